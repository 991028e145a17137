// Vertex stage of a full-screen pass: one triangle from gl_VertexID, no vertex buffer.
// Draw with an empty vertex array and 3 vertices. `z` is the clip depth written (0 = mid).
#ifndef FULLSCREEN_Z
#define FULLSCREEN_Z 0.0
#endif
void main() {
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2);
    gl_Position = vec4(p * 2.0 - 1.0, FULLSCREEN_Z, 1.0);
}
