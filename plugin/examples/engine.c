/* engine.c - a minimal C "engine" that drives the STSS plugin through its C ABI.
 *
 * It renders a moving soft-checkerboard-and-bars scene itself (colour, linear depth,
 * motion vectors, G-buffers, Halton jitter), runs create -> 8 dispatches -> reset -> 3
 * dispatches -> destroy at 64x40 -> 128x80, three generated frames per rendered one by
 * default (4x the rendered frame rate), and checks what comes back. One line per check
 * ("PASS name: ..." or "FAIL name: ..."); exit code 0 only when every check passes.
 *
 * Build and run (from the repository root; see plugin/examples/README.md):
 *   .venv/bin/python -m plugin.c_abi --build
 *   gcc -std=c99 -O2 -Wall -Wextra -Werror plugin/examples/engine.c -Iplugin/include \
 *       -Lbuild/plugin -lstss_plugin -Wl,-rpath,"$PWD/build/plugin" -lm -o build/plugin/engine
 *   build/plugin/engine [pass] [images] [generated]
 * pass: "stss", the default, or e.g. "bilinear"; generated: frames extrapolated per rendered
 * frame, 1 to 3 (default 3); images: "host" (the default: host memory,
 * a context on the CPU), or on a context on "cuda" (an NVIDIA GPU): "cuda" (every input and
 * the upscaled output as CUDA device pointers) or "gl" (colour, motion vectors and the
 * upscaled output as OpenGL textures of a headless EGL context on the NVIDIA driver). The
 * GPU modes load the CUDA runtime and EGL/OpenGL at run time (gpu.h): link with -ldl on
 * a C library older than glibc 2.34.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stss_plugin.h"
#include "gpu.h"

enum { RW = 64, RH = 40, DW = 128, DH = 80, FRAMES = 8, FRAMES_AFTER_RESET = 3, MAX_GEN = STSS_MAX_GENERATED_FRAMES };
/* CUDA copies (cuda mode): the rendered frame's 8 images, 7 per generated frame, the output */
enum { DEV_IMAGES = 8 + 7 * MAX_GEN + 1 };

static const double PI = 3.14159265358979323846;
static const double SPEED = 2.0;        /* display pixels per rendered frame, +x (1 render pixel) */
static const double FRAME_MS = 33.3;    /* a 30 fps render */
static const double DEPTH = 5.0;        /* a plane facing the camera, scene units */
static const double UPSCALE_MAE_MAX = 0.03;    /* linear colour in [0.05, 0.95] */
static const double GENERATED_MAE_MAX = 0.045;

static int failures = 0;

static void check(int ok, const char* name, const char* fmt, ...)
{
    va_list args;
    printf("%s %s: ", ok ? "PASS" : "FAIL", name);
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
    fflush(stdout);
    if (!ok)
        ++failures;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ---- the scene: a pattern in display-pixel coordinates, moving +x by SPEED per frame ---- */

static void pattern(double x, double y, float rgb[3])
{
    double checker = tanh(3.0 * sin(PI * x / 16.0) * sin(PI * y / 16.0)); /* 32 px soft squares */
    rgb[0] = (float)(0.5 + 0.3 * checker + 0.12 * sin(2.0 * PI * x / 24.0));
    rgb[1] = (float)(0.5 + 0.3 * checker);
    rgb[2] = (float)(0.5 - 0.3 * checker + 0.12 * sin(2.0 * PI * y / 20.0));
}

/* the scene at time t (in rendered frames), seen at display-pixel position (x, y) */
static void scene(double t, double x, double y, float rgb[3]) { pattern(x - SPEED * t, y, rgb); }

static double halton(int index, int base)
{
    double result = 0.0, f = 1.0;
    while (index > 0) {
        f /= base;
        result += f * (index % base);
        index /= base;
    }
    return result;
}

/* jitter of display frame `index`, render pixels: Halton (2, 3) at (index % 32) + 1, minus 0.5 */
static void jitter(int index, double* jx, double* jy)
{
    *jx = halton(index % 32 + 1, 2) - 0.5;
    *jy = halton(index % 32 + 1, 3) - 0.5;
}

/* Render-resolution buffers. Pitches on purpose not all packed: colour rows are padded. */
typedef struct gbuffer {
    float color[RH][RW + 3][4];     /* RGBA32F, pitch (RW + 3) * 16 bytes */
    float depth[RH][RW + 8];        /* R32F, pitch (RW + 8) * 4 bytes */
    float motion[RH][RW][2];        /* RG32F, packed */
    float albedo[RH][RW][3];        /* RGB32F */
    float normal[RH][RW][3];
    float roughness[RH][RW];
    float metallic[RH][RW];
    int32_t object_id[RH][RW];      /* R32I */
} gbuffer;

static stss_image image(void* data, int64_t pitch, int32_t w, int32_t h, int32_t format)
{
    stss_image im;
    memset(&im, 0, sizeof im);   /* memory = STSS_MEMORY_HOST, gl_texture = 0 */
    im.data = data;
    im.pitch_bytes = pitch;
    im.width = w;
    im.height = h;
    im.format = format;
    return im;
}

/* Render the scene at time t with sub-pixel jitter (jx, jy); motion to the previous
 * display frame, dt frames earlier. A render pixel's centre c sees the scene point that
 * lands at c, i.e. the unjittered position c - jitter (conventions: p -> p + jitter). */
static void render(gbuffer* g, double t, double dt, double jx, double jy, int with_color)
{
    for (int j = 0; j < RH; ++j)
        for (int i = 0; i < RW; ++i) {
            float rgb[3];
            double x = (i + 0.5 - jx) * DW / RW, y = (j + 0.5 - jy) * DH / RH;
            scene(t, x, y, rgb);
            if (with_color) {
                for (int c = 0; c < 3; ++c)
                    g->color[j][i][c] = rgb[c];
                g->color[j][i][3] = 1.0f;
            }
            g->depth[j][i] = (float)DEPTH;
            g->motion[j][i][0] = (float)(-SPEED * dt * RW / DW); /* previous minus current, render px */
            g->motion[j][i][1] = 0.0f;
            for (int c = 0; c < 3; ++c)
                g->albedo[j][i][c] = rgb[c];  /* unlit: colour = albedo */
            g->normal[j][i][0] = g->normal[j][i][1] = 0.0f;
            g->normal[j][i][2] = 1.0f;
            g->roughness[j][i] = 0.5f;
            g->metallic[j][i] = 0.0f;
            g->object_id[j][i] = 1;
        }
}

static void perspective(double m[16], double fov_y, double aspect, double n, double f)
{
    double t = 1.0 / tan(fov_y / 2.0);
    memset(m, 0, 16 * sizeof m[0]);
    m[0] = t / aspect;                   /* column-major: m[col * 4 + row] */
    m[5] = t;
    m[10] = (f + n) / (n - f);
    m[11] = -1.0;
    m[14] = 2.0 * f * n / (n - f);
}

/* display outputs */
typedef struct display_rgba { float px[DH][DW][4]; } display_rgba;  /* RGBA32F, packed */
typedef struct display_rgb { float px[DH][DW + 5][3]; } display_rgb; /* RGB32F, padded rows */

static double mae_vs_reference(const float* px, int channels, int64_t pitch_floats, double t)
{
    double sum = 0.0;
    for (int y = 0; y < DH; ++y)
        for (int x = 0; x < DW; ++x) {
            float ref[3];
            scene(t, x + 0.5, y + 0.5, ref);
            const float* p = px + y * pitch_floats + x * channels;
            for (int c = 0; c < 3; ++c)
                sum += fabs(p[c] - ref[c]);
        }
    return sum / (DW * DH * 3);
}

static int all_finite(const float* px, int channels, int64_t pitch_floats)
{
    for (int y = 0; y < DH; ++y)
        for (int x = 0; x < DW * channels; ++x)
            if (!isfinite(px[y * pitch_floats + x]))
                return 0;
    return 1;
}

/* mean |a(x, y) - b(x - shift, y)| over the columns where both exist */
static double shifted_mae(const display_rgba* a, const display_rgba* b, int shift)
{
    double sum = 0.0;
    long n = 0;
    for (int y = 0; y < DH; ++y)
        for (int x = shift + 8; x < DW - 8; ++x)
            for (int c = 0; c < 3; ++c, ++n)
                sum += fabs(a->px[y][x][c] - b->px[y][x - shift][c]);
    return sum / (double)n;
}

static int messages = 0;
static char last_message[512];

static void on_message(int32_t severity, const char* message, void* user)
{
    ++*(int*)user;
    snprintf(last_message, sizeof last_message, "%s", message);
    printf("message (severity %d): %s\n", (int)severity, message);
}

int main(int argc, char** argv)
{
    const char* pass = argc > 1 ? argv[1] : "stss";
    const char* images = argc > 2 ? argv[2] : "host";
    int on_cuda = strcmp(images, "cuda") == 0, on_gl = strcmp(images, "gl") == 0;
    if (!on_cuda && !on_gl && strcmp(images, "host") != 0) {
        printf("images: expected host, cuda or gl, got %s\n", images);
        return 2;
    }
    const int n_gen = argc > 3 ? atoi(argv[3]) : MAX_GEN;  /* generated frames per rendered frame */
    if (n_gen < 1 || n_gen > MAX_GEN) {
        printf("generated: expected 1 to %d, got %s\n", MAX_GEN, argv[3]);
        return 2;
    }
    const double step = 1.0 / (n_gen + 1);  /* rendered frames between two display frames */
    printf("stss_version %s, abi %d (header %d), pass %s, images in %s, %d generated frame(s) per rendered one\n",
           stss_version(), (int)stss_abi_version(), STSS_ABI_VERSION, pass,
           on_cuda ? "CUDA memory" : on_gl ? "GL textures" : "host memory", n_gen);
    char why[512] = "";
    if (on_gl) {  /* the GL context is current on this thread for every dispatch */
        int failed = gl_context(why, sizeof why);
        check(!failed, "gl_context", "%s", failed ? why : (const char*)gl.get_string(GL_RENDERER_));
        if (failed)
            return 1;
    }

    /* -- pure helpers: the library's jitter is ours -- */
    int32_t phases = stss_jitter_phase_count(RW, DW);
    int same = phases == 32;
    for (int i = 0; i < 64; ++i) {
        double ax, ay, bx, by;
        jitter(i, &ax, &ay);
        stss_jitter_offset(i, phases, &bx, &by);
        same = same && fabs(ax - bx) < 1e-12 && fabs(ay - by) < 1e-12;
    }
    check(same, "jitter", "Halton (2, 3) of this engine = stss_jitter_offset, %d phases", (int)phases);

    /* -- capabilities: ask the size, then fill -- */
    size_t needed = 0;
    double t0 = now_ms();
    int32_t r = stss_query_capabilities(NULL, 0, &needed);  /* the first call starts Python */
    char* caps = malloc(needed ? needed : 1);
    int32_t r2 = caps ? stss_query_capabilities(caps, needed, &needed) : -1;
    check(r == STSS_RESULT_OK && r2 == STSS_RESULT_OK && strstr(caps, "\"passes\"") != NULL, "capabilities",
          "%zu bytes of JSON (results %d, %d; %.0f ms, Python's start included) %s", needed, (int)r,
          (int)r2, now_ms() - t0, stss_last_error());
    free(caps);

    /* -- create -- */
    stss_context_desc desc;
    stss_context_desc_init(&desc);
    desc.max_render_width = RW;
    desc.max_render_height = RH;
    desc.display_width = DW;
    desc.display_height = DH;
    desc.pass_name = pass;
    desc.generated_frames = n_gen;
    desc.flags = STSS_FLAG_HDR | STSS_FLAG_VALIDATION;
    desc.message_callback = on_message;
    desc.message_user = &messages;
    if (on_cuda || on_gl)
        desc.device = "cuda";
    stss_context* ctx = NULL;
    t0 = now_ms();
    r = stss_create(&desc, &ctx);
    check(r == STSS_RESULT_OK && ctx != NULL, "create", "result %d in %.0f ms %s",
          (int)r, now_ms() - t0, stss_last_error());
    if (r != STSS_RESULT_OK)
        return 1;
    if (on_cuda) {  /* after create: the plugin's PyTorch has loaded its CUDA runtime */
        int failed = cuda_load(why, sizeof why);
        check(!failed, "cuda_runtime", "%s", failed ? why : "cudaMalloc / cudaMemcpy loaded");
        if (failed)
            return 1;
    }
    void* dev[DEV_IMAGES] = {0};    /* CUDA copies of the images (cuda) */
    uint32_t tex[3 + MAX_GEN] = {0}; /* colour, motion, the generated frames' motion, output (gl) */
    const int n_tex = 3 + n_gen;

    gbuffer* g = calloc(1, sizeof *g);      /* the rendered frame */
    gbuffer* gg = calloc(MAX_GEN, sizeof *gg);   /* the generated frames' G-buffers */
    display_rgba* out = calloc(2, sizeof *out);  /* this and the previous upscaled frame */
    display_rgb* gen = calloc(MAX_GEN, sizeof *gen);
    if (!g || !gg || !out || !gen)
        return 1;

    stss_frame_desc frame;
    stss_generated_desc gdesc[MAX_GEN];
    stss_dispatch_output output;
    stss_generated_output gout[MAX_GEN];
    double proj[16];
    perspective(proj, 60.0 * PI / 180.0, (double)DW / DH, 0.1, 100.0);

    int ok_dispatch = 1, ok_finite = 1, ok_present = 1, ok_moves = 1, ok_reset_flag = 1, ok_count = 1;
    double worst_gen_by_distance[MAX_GEN] = {0};
    double worst_mae = 0.0, worst_gen_mae = 0.0, worst_move = 0.0, dispatch_ms = 0.0, library_ms = 0.0;
    double min_still = 1e9;
    int dispatched = 0;
    const int total = FRAMES + FRAMES_AFTER_RESET;
    for (int k = 0; k < total; ++k) {
        int after_reset = k >= FRAMES;
        if (k == FRAMES) {
            r = stss_reset(ctx);
            check(r == STSS_RESULT_OK, "reset", "stss_reset returned %d %s", (int)r, stss_last_error());
        }
        double t = k, jx, jy, gjx[MAX_GEN], gjy[MAX_GEN];
        /* display frames: rendered (n + 1) k, generated (n + 1) k + j + 1 at t + (j + 1) / (n + 1) */
        jitter((n_gen + 1) * k, &jx, &jy);
        /* motion vectors point to the previous DISPLAY frame, 1 / (n + 1) of a frame back: for
           the rendered frame the last generated one, for a generated one the frame before it */
        render(g, t, step, jx, jy, 1);
        for (int j = 0; j < n_gen; ++j) {
            jitter((n_gen + 1) * k + j + 1, &gjx[j], &gjy[j]);
            render(&gg[j], t + (j + 1) * step, step, gjx[j], gjy[j], 0);
        }

        stss_frame_desc_init(&frame);
        /* after stss_reset the index may jump: the history is gone anyway */
        frame.frame_index = after_reset ? 100 + (k - FRAMES) : k;
        frame.color = image(g->color, sizeof g->color[0], RW, RH, STSS_FORMAT_RGBA32F);
        frame.depth = image(g->depth, sizeof g->depth[0], RW, RH, STSS_FORMAT_R32F);
        frame.motion = image(g->motion, 0, RW, RH, STSS_FORMAT_RG32F);
        frame.albedo = image(g->albedo, 0, RW, RH, STSS_FORMAT_RGB32F);
        frame.normal = image(g->normal, 0, RW, RH, STSS_FORMAT_RGB32F);
        frame.roughness = image(g->roughness, 0, RW, RH, STSS_FORMAT_R32F);
        frame.metallic = image(g->metallic, 0, RW, RH, STSS_FORMAT_R32F);
        frame.object_id = image(g->object_id, 0, RW, RH, STSS_FORMAT_R32I);
        frame.jitter_x = jx;
        frame.jitter_y = jy;
        frame.frame_time_ms = FRAME_MS;
        frame.near_plane = 0.1;
        frame.far_plane = 100.0;
        frame.fov_y_rad = 60.0 * PI / 180.0;
        memcpy(frame.proj, proj, sizeof proj);   /* view: identity (stss_frame_desc_init) */

        for (int j = 0; j < n_gen; ++j) {
            gbuffer* b = &gg[j];
            stss_generated_desc_init(&gdesc[j]);
            gdesc[j].depth = image(b->depth, sizeof b->depth[0], RW, RH, STSS_FORMAT_R32F);
            gdesc[j].motion = image(b->motion, 0, RW, RH, STSS_FORMAT_RG32F);
            gdesc[j].albedo = image(b->albedo, 0, RW, RH, STSS_FORMAT_RGB32F);
            gdesc[j].normal = image(b->normal, 0, RW, RH, STSS_FORMAT_RGB32F);
            gdesc[j].roughness = image(b->roughness, 0, RW, RH, STSS_FORMAT_R32F);
            gdesc[j].metallic = image(b->metallic, 0, RW, RH, STSS_FORMAT_R32F);
            gdesc[j].object_id = image(b->object_id, 0, RW, RH, STSS_FORMAT_R32I);
            gdesc[j].jitter_x = gjx[j];
            gdesc[j].jitter_y = gjy[j];
            memcpy(gdesc[j].proj, proj, sizeof proj);
        }
        int32_t next = -1;  /* the count the context takes: the fixed one here */
        r = stss_next_generated_frames(ctx, &next);
        ok_count = ok_count && r == STSS_RESULT_OK && next == n_gen;
        frame.generated = gdesc;
        frame.generated_count = n_gen;

        display_rgba* cur = &out[k % 2];
        display_rgba* prev = &out[(k + 1) % 2];
        memset(&output, 0, sizeof output);
        output.color = image(cur->px, 0, DW, DH, STSS_FORMAT_RGBA32F);
        for (int j = 0; j < n_gen; ++j) {
            gout[j].color = image(gen[j].px, sizeof gen[j].px[0], DW, DH, STSS_FORMAT_RGB32F);
            gout[j].present_time_ms = -1.0;
        }
        output.generated = gout;
        output.generated_count = n_gen;

        if (on_cuda) {  /* every input, and the upscaled output, in CUDA memory */
            stss_image* in[DEV_IMAGES - 1] = {&frame.color, &frame.depth, &frame.motion, &frame.albedo, &frame.normal,
                                              &frame.roughness, &frame.metallic, &frame.object_id};
            size_t bytes[DEV_IMAGES - 1] = {sizeof g->color, sizeof g->depth, sizeof g->motion, sizeof g->albedo,
                                            sizeof g->normal, sizeof g->roughness, sizeof g->metallic,
                                            sizeof g->object_id};
            int n_in = 8;
            for (int j = 0; j < n_gen; ++j) {
                stss_image* gi[] = {&gdesc[j].depth, &gdesc[j].motion, &gdesc[j].albedo, &gdesc[j].normal,
                                    &gdesc[j].roughness, &gdesc[j].metallic, &gdesc[j].object_id};
                size_t gb[] = {sizeof gg->depth, sizeof gg->motion, sizeof gg->albedo, sizeof gg->normal,
                               sizeof gg->roughness, sizeof gg->metallic, sizeof gg->object_id};
                for (int i = 0; i < 7; ++i, ++n_in) {
                    in[n_in] = gi[i];
                    bytes[n_in] = gb[i];
                }
            }
            for (int i = 0; i < n_in; ++i) {
                if (cuda_upload(&dev[i], in[i]->data, bytes[i]) != 0)
                    return 1;
                in[i]->data = dev[i];
                in[i]->memory = STSS_MEMORY_CUDA;
            }
            if (!dev[DEV_IMAGES - 1] && cuda.malloc_(&dev[DEV_IMAGES - 1], sizeof cur->px) != 0)
                return 1;
            output.color.data = dev[DEV_IMAGES - 1];
            output.color.memory = STSS_MEMORY_CUDA;
        } else if (on_gl) {  /* colour and motion vectors as GL textures, the output into one */
            gl_upload(&tex[0], &g->color[0][0][0], RW, RH, 4);
            gl_upload(&tex[1], &g->motion[0][0][0], RW, RH, 2);
            for (int j = 0; j < n_gen; ++j)
                gl_upload(&tex[2 + j], &gg[j].motion[0][0][0], RW, RH, 2);
            if (!tex[2 + n_gen])
                gl_upload(&tex[2 + n_gen], NULL, DW, DH, 4);
            stss_image* in[3 + MAX_GEN] = {&frame.color, &frame.motion};
            for (int j = 0; j < n_gen; ++j)
                in[2 + j] = &gdesc[j].motion;
            in[2 + n_gen] = &output.color;
            for (int i = 0; i < n_tex; ++i) {
                in[i]->data = NULL;
                in[i]->pitch_bytes = 0;
                in[i]->memory = STSS_MEMORY_GL_TEXTURE;
                in[i]->gl_texture = tex[i];
            }
        }

        double s = now_ms();
        r = stss_dispatch(ctx, &frame, &output);
        double elapsed = now_ms() - s;
        if (r == STSS_RESULT_OK && on_cuda) {  /* the upscaled frame back, for the checks below */
            int e = cuda.memcpy_(cur->px, dev[19], sizeof cur->px, CUDA_MEMCPY_DEVICE_TO_HOST);
            if (e != 0)
                printf("cudaMemcpy from the device: %s\n", cuda.error_string(e));
        } else if (r == STSS_RESULT_OK && on_gl) {
            gl_download_rgba(tex[2 + n_gen], &cur->px[0][0][0], DW, DH);
        }
        if (r != STSS_RESULT_OK) {
            ok_dispatch = 0;
            printf("dispatch %d failed: %d %s\n", k, (int)r, stss_last_error());
            continue;
        }
        ++dispatched;
        if (k > 0) {  /* the first call includes the pass's set-up */
            dispatch_ms += elapsed;
            library_ms += output.total_ms;
        }
        ok_finite = ok_finite && all_finite(&cur->px[0][0][0], 4, DW * 4);
        double mae = mae_vs_reference(&cur->px[0][0][0], 4, DW * 4, t), gmae = 0.0;
        worst_mae = mae > worst_mae ? mae : worst_mae;
        ok_count = ok_count && output.generated_frames == n_gen && output.next_generated_frames == n_gen;
        for (int j = 0; j < n_gen; ++j) {  /* generated frame j: at t + (j + 1) / (n + 1), presented then */
            ok_finite = ok_finite && all_finite(&gen[j].px[0][0][0], 3, (DW + 5) * 3);
            double e = mae_vs_reference(&gen[j].px[0][0][0], 3, (DW + 5) * 3, t + (j + 1) * step);
            worst_gen_by_distance[j] = e > worst_gen_by_distance[j] ? e : worst_gen_by_distance[j];
            gmae = e > gmae ? e : gmae;
            ok_present = ok_present && fabs(gout[j].present_time_ms - FRAME_MS * (j + 1) * step) < 1e-6;
        }
        worst_gen_mae = gmae > worst_gen_mae ? gmae : worst_gen_mae;
        if (k == 0 || k == FRAMES)
            ok_reset_flag = ok_reset_flag && output.reset == 1;
        else
            ok_reset_flag = ok_reset_flag && output.reset == 0;
        if (k > 0 && k != FRAMES) {
            /* the picture moved by SPEED display pixels: shifting the previous output by
               that much must match far better than not shifting it */
            double still = shifted_mae(cur, prev, 0), moved = shifted_mae(cur, prev, (int)SPEED);
            ok_moves = ok_moves && still > 0.01 && moved < 0.5 * still;
            worst_move = moved > worst_move ? moved : worst_move;
            min_still = still < min_still ? still : min_still;
        }
        printf("frame %3lld: %.1f ms (library %.1f: inputs %.1f, upscale %.1f, generate %.1f, ui %.1f), "
               "MAE upscaled %.4f generated (worst) %.4f, reset %d, warnings %d\n", (long long)frame.frame_index,
               elapsed, output.total_ms, output.inputs_ms, output.upscale_ms, output.generate_ms, output.ui_ms,
               mae, gmae, (int)output.reset, (int)output.warning_count);
    }
    check(ok_dispatch && dispatched == total, "dispatch", "%d of %d frames returned STSS_RESULT_OK", dispatched, total);
    check(ok_finite, "finite", "every output value is finite");
    check(worst_mae < UPSCALE_MAE_MAX, "upscaled_vs_reference", "worst mean abs error %.4f (limit %.3f)", worst_mae,
          UPSCALE_MAE_MAX);
    check(worst_gen_mae < GENERATED_MAE_MAX, "generated_vs_reference",
          "worst mean abs error %.4f (limit %.3f); by distance 1..%d: %.4f %.4f %.4f", worst_gen_mae, GENERATED_MAE_MAX,
          n_gen, worst_gen_by_distance[0], worst_gen_by_distance[1], worst_gen_by_distance[2]);
    check(ok_present, "present_time", "generated frame j of %d presents at (j + 1) / %d of the frame time (%.2f ms)",
          n_gen, n_gen + 1, FRAME_MS * step);
    check(ok_count, "next_generated_frames", "stss_next_generated_frames, output.generated_frames and "
          "output.next_generated_frames all say %d", n_gen);
    check(ok_moves, "moves", "consecutive outputs differ (>= %.3f) and match once shifted by %.0f px (<= %.3f)",
          min_still, SPEED, worst_move);
    check(ok_reset_flag, "reset_flag", "output.reset is 1 on the first frame and after stss_reset only");
    printf("timing: %.1f ms per dispatch in C (%.1f ms inside the library), mean of %d frames at %dx%d -> %dx%d\n",
           dispatch_ms / (dispatched - 1), library_ms / (dispatched - 1), dispatched - 1, RW, RH, DW, DH);

    /* -- validation mode: a zero jitter is legal but suspicious: a warning, not an error -- */
    messages = 0;
    frame.frame_index += 1;
    frame.jitter_x = frame.jitter_y = 0.0;
    r = stss_dispatch(ctx, &frame, &output);
    check(r == STSS_RESULT_OK && messages >= 1 && output.warning_count >= 1 && strstr(last_message, "jitter_x"),
          "validation_warning", "result %d, %d message(s), %d warning(s): %s", (int)r, messages,
          (int)output.warning_count, last_message);
    frame.jitter_x = 0.25;

    /* -- errors name the field; the context is unchanged -- */
    frame.frame_index += 1;
    frame.frame_time_ms = 0.016;  /* seconds, not milliseconds */
    r = stss_dispatch(ctx, &frame, &output);
    check(r == STSS_RESULT_INVALID_ARGUMENT && strstr(stss_last_error(), "frame.frame_time_ms") != NULL,
          "frame_time_in_seconds", "result %d: %s", (int)r, stss_last_error());
    frame.frame_time_ms = FRAME_MS;
    frame.frame_index += 5;       /* a gap without reset = 1 */
    r = stss_dispatch(ctx, &frame, &output);
    check(r == STSS_RESULT_INVALID_ARGUMENT && strstr(stss_last_error(), "frame.frame_index") != NULL,
          "frame_index_gap", "result %d: %s", (int)r, stss_last_error());
    frame.frame_index -= 5;

    /* -- GPU handles (a CUDA pointer, a GL texture) need a context on "cuda": this one is on the CPU -- */
    if (!on_cuda && !on_gl) {
        frame.depth.memory = STSS_MEMORY_GL_TEXTURE;
        frame.depth.gl_texture = 1;
        r = stss_dispatch(ctx, &frame, &output);
        check(r == STSS_RESULT_UNSUPPORTED && strstr(stss_last_error(), "frame.depth.memory") != NULL,
              "gpu_handle_refused", "result %d: %s", (int)r, stss_last_error());
        frame.depth.memory = STSS_MEMORY_HOST;
    }
    r = stss_release_gpu_resources(ctx);
    check(r == STSS_RESULT_OK, "release_gpu_resources", "result %d %s", (int)r, stss_last_error());

    /* -- destroy, then use the dead handle -- */
    r = stss_destroy(ctx);
    check(r == STSS_RESULT_OK && stss_last_error()[0] == '\0', "destroy", "result %d", (int)r);
    r = stss_dispatch(ctx, &frame, &output);
    check(r == STSS_RESULT_INVALID_STATE && strstr(stss_last_error(), "destroyed") != NULL,
          "dispatch_after_destroy", "result %d: %s", (int)r, stss_last_error());
    r = stss_destroy(ctx);
    check(r == STSS_RESULT_INVALID_STATE && strstr(stss_last_error(), "destroyed") != NULL, "destroy_twice",
          "result %d: %s", (int)r, stss_last_error());

    for (int i = 0; i < DEV_IMAGES; ++i)
        if (dev[i])
            cuda.free_(dev[i]);
    if (tex[0])
        gl.delete_textures(n_tex, tex);
    free(g);
    free(gg);
    free(out);
    free(gen);
    printf("%s: %d check(s) failed\n", failures ? "FAILED" : "ALL PASSED", failures);
    return failures ? 1 : 0;
}
