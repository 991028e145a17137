// Depth-only pass into the sun's shadow map. Alpha-tested materials cut holes here too.
#if defined VERTEX_SHADER
in vec3 in_position;
in vec2 in_uv;
uniform mat4 u_light_mvp;
uniform vec2 u_uv_scale;
out vec2 v_uv;
void main() {
    v_uv = in_uv * u_uv_scale;
    gl_Position = u_light_mvp * vec4(in_position, 1.0);
}
#elif defined FRAGMENT_SHADER
in vec2 v_uv;
uniform bool u_has_texture;
uniform sampler2D u_albedo_tex;
uniform float u_alpha;
uniform float u_alpha_cutoff;
void main() {
    if (u_alpha_cutoff >= 0.0) {
        float a = u_alpha * (u_has_texture ? texture(u_albedo_tex, v_uv).a : 1.0);
        if (a < u_alpha_cutoff) discard;
    }
}
#endif
