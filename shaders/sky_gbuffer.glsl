// G-buffer pass for background pixels: a full-screen triangle at the far plane, drawn after
// the objects with depth test LEQUAL. Background motion is the camera-rotation motion of a
// point at infinity (CONVENTIONS.md), not zero.
#if defined VERTEX_SHADER
#define FULLSCREEN_Z 1.0
#include "include/fullscreen.glsl"

#elif defined FRAGMENT_SHADER
#include "include/motion.glsl"

uniform mat4 u_inv_jittered_proj;
uniform mat4 u_view;
uniform mat4 u_prev_view;
uniform mat4 u_proj;
uniform mat4 u_prev_proj;
uniform vec2 u_size;
uniform float u_far;

layout(location = 0) out vec4 out_albedo_roughness;
layout(location = 1) out vec4 out_normal_metallic;
layout(location = 2) out vec2 out_motion;
layout(location = 3) out vec2 out_depth_id;

void main() {
    vec2 ndc = gl_FragCoord.xy / u_size * 2.0 - 1.0;
    vec4 q = u_inv_jittered_proj * vec4(ndc, 1.0, 1.0);
    vec3 dir_view = normalize(q.xyz / q.w);
    vec3 dir_world = transpose(mat3(u_view)) * dir_view;
    vec4 cur_clip = u_proj * vec4(mat3(u_view) * dir_world, 0.0);
    vec4 prev_clip = u_prev_proj * vec4(mat3(u_prev_view) * dir_world, 0.0);
    out_albedo_roughness = vec4(0.0, 0.0, 0.0, 1.0);
    out_normal_metallic = vec4(-dir_view, 0.0);
    out_motion = motion_px(prev_clip, cur_clip, u_size);
    out_depth_id = vec2(u_far, 0.0);
}
#endif
