// Shows a linear HDR texture on screen through the project's display transform
// (Reinhard per channel, then sRGB; CONVENTIONS.md). The source is sampled with bilinear
// filtering over the viewport, so a low-resolution source is upscaled bilinearly.
#if defined VERTEX_SHADER
#include "include/fullscreen.glsl"
#elif defined FRAGMENT_SHADER
uniform sampler2D u_source;
uniform vec4 u_viewport;   // x, y, w, h of the destination rectangle, pixels
out vec4 out_color;

vec3 srgb_encode(vec3 x) {
    x = clamp(x, 0.0, 1.0);
    return mix(12.92 * x, 1.055 * pow(x, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, x));
}

void main() {
    vec2 uv = (gl_FragCoord.xy - u_viewport.xy) / u_viewport.zw;
    vec3 c = max(texture(u_source, uv).rgb, 0.0);
    out_color = vec4(srgb_encode(c / (1.0 + c)), 1.0);
}
#endif
