// G-buffer pass for scene objects: albedo+roughness, view normal+metallic, motion,
// linear depth+object id. Camera matrices are unjittered; the jitter is applied to
// gl_Position only, so motion vectors exclude it (CONVENTIONS.md).
#if defined VERTEX_SHADER

in vec3 in_position;
in vec3 in_normal;
in vec2 in_uv;

uniform mat4 u_model;
uniform mat4 u_prev_model;
uniform mat4 u_view;
uniform mat4 u_prev_view;
uniform mat4 u_proj;
uniform mat4 u_prev_proj;
uniform mat3 u_normal_matrix;   // view-space normal matrix of this object
uniform vec2 u_jitter_ndc;      // (2 jx / w, -2 jy / h)
uniform vec2 u_uv_scale;

out vec4 v_cur_clip;
out vec4 v_prev_clip;
out vec3 v_normal;
out vec2 v_uv;
out float v_view_depth;

void main() {
    vec4 view_pos = u_view * (u_model * vec4(in_position, 1.0));
    v_cur_clip = u_proj * view_pos;
    v_prev_clip = u_prev_proj * (u_prev_view * (u_prev_model * vec4(in_position, 1.0)));
    v_view_depth = -view_pos.z;
    v_normal = u_normal_matrix * in_normal;
    v_uv = in_uv * u_uv_scale;
    gl_Position = v_cur_clip;
    gl_Position.xy += u_jitter_ndc * v_cur_clip.w;
}

#elif defined FRAGMENT_SHADER
#include "include/motion.glsl"

in vec4 v_cur_clip;
in vec4 v_prev_clip;
in vec3 v_normal;
in vec2 v_uv;
in float v_view_depth;

uniform vec4 u_base_color;      // linear
uniform bool u_has_texture;
uniform sampler2D u_albedo_tex; // sRGB texture: sampled values are linear
uniform float u_lod_bias;       // log2(render_width / display_width)
uniform float u_roughness;
uniform float u_metallic;
uniform float u_alpha_cutoff;   // < 0: opaque
uniform float u_object_id;
uniform vec2 u_size;            // render target size, pixels

layout(location = 0) out vec4 out_albedo_roughness;
layout(location = 1) out vec4 out_normal_metallic;
layout(location = 2) out vec2 out_motion;
layout(location = 3) out vec2 out_depth_id;

void main() {
    vec4 base = u_base_color;
    if (u_has_texture) base *= texture(u_albedo_tex, v_uv, u_lod_bias);
    if (u_alpha_cutoff >= 0.0 && base.a < u_alpha_cutoff) discard;
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    out_albedo_roughness = vec4(base.rgb, u_roughness);
    out_normal_metallic = vec4(n, u_metallic);
    out_motion = motion_px(v_prev_clip, v_cur_clip, u_size);
    out_depth_id = vec2(v_view_depth, u_object_id);
}
#endif
