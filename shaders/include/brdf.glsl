// Cook-Torrance GGX specular + Lambert diffuse (metallic-roughness model).
const float PI = 3.14159265358979;

float d_ggx(float n_h, float a) {
    float a2 = a * a;
    float d = n_h * n_h * (a2 - 1.0) + 1.0;
    return a2 / (PI * d * d);
}

float v_smith_ggx(float n_v, float n_l, float a) {
    float k = a * 0.5;
    return 0.25 / ((n_v * (1.0 - k) + k) * (n_l * (1.0 - k) + k));
}

vec3 f_schlick(vec3 f0, float v_h) {
    return f0 + (1.0 - f0) * pow(clamp(1.0 - v_h, 0.0, 1.0), 5.0);
}

// Radiance reflected towards v from light direction l (both unit, pointing away from the
// surface) for incoming radiance `radiance`.
vec3 brdf_light(vec3 n, vec3 v, vec3 l, vec3 albedo, float roughness, float metallic,
                vec3 radiance) {
    float n_l = max(dot(n, l), 0.0);
    if (n_l <= 0.0) return vec3(0.0);
    vec3 h = normalize(v + l);
    float n_v = max(dot(n, v), 1e-4);
    float n_h = max(dot(n, h), 0.0);
    float v_h = clamp(dot(v, h), 0.0, 1.0);
    float a = max(roughness * roughness, 0.002);
    vec3 f0 = mix(vec3(0.04), albedo, metallic);
    vec3 f = f_schlick(f0, v_h);
    vec3 spec = d_ggx(n_h, a) * v_smith_ggx(n_v, n_l, a) * f;
    vec3 diff = (1.0 - f) * (1.0 - metallic) * albedo / PI;
    return (diff + spec) * radiance * n_l;
}
