// The procedural sky (linear HDR), seen along world-space direction d.
uniform vec3 u_sky_zenith;
uniform vec3 u_sky_horizon;
uniform vec3 u_sky_ground;
uniform vec3 u_sun_dir_world;   // towards the sun, unit
uniform vec3 u_sun_radiance;

vec3 sky_radiance(vec3 d) {
    float up = d.y;
    vec3 c = up >= 0.0 ? mix(u_sky_horizon, u_sky_zenith, pow(up, 0.6))
                       : mix(u_sky_horizon, u_sky_ground, pow(-up, 0.4));
    float s = max(dot(d, u_sun_dir_world), 0.0);
    c += u_sun_radiance * (pow(s, 800.0) * 8.0 + pow(s, 12.0) * 0.08);
    return c;
}
