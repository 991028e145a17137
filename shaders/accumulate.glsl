// Adds u_weight * source into the bound (additively blended) accumulation target: the
// ground truth is the average of many jittered renders.
#if defined VERTEX_SHADER
#include "include/fullscreen.glsl"
#elif defined FRAGMENT_SHADER
uniform sampler2D u_source;
uniform float u_weight;
out vec4 out_color;
void main() {
    out_color = texelFetch(u_source, ivec2(gl_FragCoord.xy), 0) * u_weight;
}
#endif
