// Shows a texture in a rectangle of the screen. Linear HDR sources go through the
// project's display transform (Reinhard per channel, then sRGB; CONVENTIONS.md); sources
// already display-encoded (8-bit debug views) are shown as they are. The source is sampled
// with the texture's own filter over the viewport (bilinear: a low-resolution source is
// upscaled bilinearly; nearest: the zoom loupe shows pixels).
#if defined VERTEX_SHADER
#include "include/fullscreen.glsl"
#elif defined FRAGMENT_SHADER
uniform sampler2D u_source;
uniform vec4 u_viewport;   // x, y, w, h of the destination rectangle, pixels
uniform vec4 u_uv_rect;    // x, y, w, h of the source rectangle, texture coordinates (0..1)
uniform int u_encoded;     // 1: the source is already display-encoded
out vec4 out_color;

vec3 srgb_encode(vec3 x) {
    x = clamp(x, 0.0, 1.0);
    return mix(12.92 * x, 1.055 * pow(x, vec3(1.0 / 2.4)) - 0.055, step(0.0031308, x));
}

void main() {
    vec2 uv = u_uv_rect.xy + (gl_FragCoord.xy - u_viewport.xy) / u_viewport.zw * u_uv_rect.zw;
    vec3 c = texture(u_source, uv).rgb;
    out_color = vec4(u_encoded == 1 ? c : srgb_encode(max(c, 0.0) / (1.0 + max(c, 0.0))), 1.0);
}
#endif
