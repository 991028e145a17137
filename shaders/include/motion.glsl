// Motion vectors per CONVENTIONS.md: render pixels, previous minus current, +x right,
// +y down, from unjittered clip positions.
vec2 motion_px(vec4 prev_clip, vec4 cur_clip, vec2 size_px) {
    vec2 prev_ndc = prev_clip.xy / max(prev_clip.w, 1e-6);
    vec2 cur_ndc = cur_clip.xy / cur_clip.w;
    return (prev_ndc - cur_ndc) * 0.5 * size_px * vec2(1.0, -1.0);
}
