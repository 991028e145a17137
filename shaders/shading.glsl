// Deferred shading from the G-buffers: a shadowed sun, point lights (GGX specular), and
// hemisphere + sky-reflection ambient. Output: linear HDR colour.
#if defined VERTEX_SHADER
#include "include/fullscreen.glsl"

#elif defined FRAGMENT_SHADER
#include "include/brdf.glsl"
#include "include/sky.glsl"

#define MAX_POINT_LIGHTS 8

uniform sampler2D u_albedo_roughness;
uniform sampler2D u_normal_metallic;
uniform sampler2D u_depth_id;
uniform sampler2DShadow u_shadow_map;

uniform mat4 u_inv_jittered_proj;
uniform mat4 u_inv_view;
uniform mat4 u_shadow_matrix;     // world -> shadow map [0,1]^3
uniform float u_shadow_texel;     // 1 / shadow map size
uniform vec2 u_size;

uniform vec3 u_sun_dir_view;      // towards the sun, view space
uniform int u_point_count;
uniform vec3 u_point_pos_view[MAX_POINT_LIGHTS];
uniform vec3 u_point_radiance[MAX_POINT_LIGHTS];
uniform float u_point_radius[MAX_POINT_LIGHTS];

out vec4 out_color;

float sun_visibility(vec3 world_pos, vec3 world_normal) {
    vec3 p = world_pos + world_normal * 0.03;   // normal offset against acne
    vec4 s = u_shadow_matrix * vec4(p, 1.0);
    if (any(lessThan(s.xyz, vec3(0.0))) || any(greaterThan(s.xyz, vec3(1.0)))) return 1.0;
    float sum = 0.0;
    for (int y = -2; y <= 2; ++y)             // 5x5 PCF (each tap bilinear-compared)
        for (int x = -2; x <= 2; ++x)
            sum += texture(u_shadow_map, vec3(s.xy + vec2(x, y) * u_shadow_texel, s.z - 0.0015));
    return sum / 25.0;
}

void main() {
    ivec2 px = ivec2(gl_FragCoord.xy);
    vec2 depth_id = texelFetch(u_depth_id, px, 0).xy;
    vec2 ndc = gl_FragCoord.xy / u_size * 2.0 - 1.0;
    vec4 q = u_inv_jittered_proj * vec4(ndc, 1.0, 1.0);
    vec3 ray = q.xyz / q.w;                        // view space, towards the pixel
    if (depth_id.y < 0.5) {                        // background
        out_color = vec4(sky_radiance(normalize(mat3(u_inv_view) * ray)), 1.0);
        return;
    }
    vec4 ar = texelFetch(u_albedo_roughness, px, 0);
    vec4 nm = texelFetch(u_normal_metallic, px, 0);
    vec3 albedo = ar.rgb;
    float roughness = clamp(ar.a, 0.02, 1.0);
    float metallic = nm.a;
    vec3 n = normalize(nm.xyz);
    vec3 pos = ray * (depth_id.x / -ray.z);        // view-space position
    vec3 v = normalize(-pos);
    if (dot(n, v) < 0.0) n = -n;

    vec3 world_pos = (u_inv_view * vec4(pos, 1.0)).xyz;
    vec3 world_n = mat3(u_inv_view) * n;

    vec3 c = vec3(0.0);
    float vis = sun_visibility(world_pos, world_n);
    c += vis * brdf_light(n, v, u_sun_dir_view, albedo, roughness, metallic, u_sun_radiance);
    for (int i = 0; i < u_point_count; ++i) {
        vec3 d = u_point_pos_view[i] - pos;
        float dist2 = max(dot(d, d), 1e-4);
        float r = u_point_radius[i];
        float window = clamp(1.0 - dist2 * dist2 / (r * r * r * r), 0.0, 1.0);
        vec3 radiance = u_point_radiance[i] * window * window / dist2;
        c += brdf_light(n, v, d * inversesqrt(dist2), albedo, roughness, metallic, radiance);
    }
    // ambient: diffuse from a sky/ground hemisphere, specular from the sky along the reflection
    float up = world_n.y * 0.5 + 0.5;
    vec3 hemi = mix(u_sky_ground, u_sky_zenith, up) * 0.6 + u_sky_horizon * 0.2;
    vec3 f0 = mix(vec3(0.04), albedo, metallic);
    float n_v = clamp(dot(n, v), 0.0, 1.0);
    vec3 fr = f0 + (max(vec3(1.0 - roughness), f0) - f0) * pow(1.0 - n_v, 5.0);
    vec3 refl = mat3(u_inv_view) * reflect(-v, n);
    vec3 env = mix(sky_radiance(normalize(refl)), hemi, roughness);
    c += hemi * albedo * (1.0 - metallic) * (1.0 - fr) + env * fr * (0.35 + 0.65 * vis);
    out_color = vec4(c, 1.0);
}
#endif
