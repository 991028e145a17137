/* stss_plugin.h - the C ABI of the STSS plugin (neural supersampling + frame extrapolation).
 *
 * The library, libstss_plugin.so, embeds the project's Python runtime (plugin/c_abi.py);
 * build it with   .venv/bin/python -m plugin.c_abi --build   (-> build/plugin/). It is
 * tied to the checkout and the virtual environment it was built from (their paths are
 * baked into it); see plugin/examples/README.md.
 *
 * The shape is FSR 2's: create a context from a description, dispatch one frame
 * description per rendered frame, destroy. Every call returns an stss_result; on failure
 * stss_last_error() says which field is wrong, what was expected and what was received.
 * No exception, signal or traceback ever leaves the library.
 *
 * Conventions (shared/CONVENTIONS.md):
 *   - images: row 0 = the TOP row; pixel centres at integer + 0.5; linear colour;
 *   - motion vectors: previous minus current position, in pixels of the render
 *     resolution (display pixels with STSS_FLAG_DISPLAY_RES_MOTION), +x right, +y down,
 *     jitter excluded (unless STSS_FLAG_JITTERED_MOTION); "previous" is the previous
 *     DISPLAY frame: with n generated frames a rendered frame's vectors point to the
 *     last generated frame, 1/(n+1) of a frame time back, a generated frame's to the frame
 *     before it (the rendered one, for the first);
 *   - jitter: sub-pixel offset of the render in render pixels, each in [-0.5, 0.5];
 *     Halton (2, 3) at index (frame % phase_count) + 1, minus 0.5 (stss_jitter_offset);
 *   - matrices: 16 doubles, COLUMN-MAJOR (m[col * 4 + row], as GLM's value_ptr or
 *     glUniformMatrix4dv with transpose = GL_FALSE), for column vectors:
 *     clip = proj * view * (x, y, z, 1); OpenGL clip space; proj WITHOUT the jitter;
 *   - times in milliseconds, distances in scene units, angles in radians.
 *
 * Threads: any thread may call; calls are serialised inside the library. Images are
 * read during stss_dispatch only: the library keeps no pointer to them afterwards.
 *
 * GPU handles (stss_image.memory): on a context created with device = "cuda", an image may
 * be a CUDA device pointer (STSS_MEMORY_CUDA: data, pitch_bytes and format as for host
 * memory, on the context's GPU, in the primary context; finish writing it -- synchronise
 * your stream -- before stss_dispatch) or an OpenGL texture name (STSS_MEMORY_GL_TEXTURE: a
 * GL_TEXTURE_2D of the GL context current on the calling thread, which must run on the
 * NVIDIA driver of the same GPU; width, height and format declare the texture's size and
 * internal format, and are checked; its rows are bottom-up as GL's, the plugin flips
 * them). GL textures are copied on the GPU through CUDA-OpenGL interop, never through host
 * memory; each is registered with CUDA once per context (call stss_release_gpu_resources
 * before deleting or re-creating one). Outputs may be CUDA pointers or GL textures
 * (RGBA32F / RGBA16F) too; they are complete when stss_dispatch returns. A context on the
 * CPU refuses GPU handles with STSS_RESULT_UNSUPPORTED. The GPU paths were written without
 * a GPU to test them on (none was available): only their refusal is tested so far.
 */
#ifndef STSS_PLUGIN_H
#define STSS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  define STSS_API
#else
#  define STSS_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cffi:begin ------------------------------------------------------------------
 * plugin/c_abi.py hands the text between cffi:begin and cffi:end to cffi (with STSS_API
 * removed): declarations only, no other preprocessor lines than integer #defines. */

#define STSS_ABI_VERSION 3  /* 2: stss_image.memory and .gl_texture, stss_release_gpu_resources;
                               3: 1 to 3 generated frames or STSS_GENERATED_FRAMES_AUTO (target_display_hz,
                               render_time_ms, stss_next_generated_frames, the count in the output) */

/* stss_context_desc.generated_frames: 0 (upscale only) to STSS_MAX_GENERATED_FRAMES frames
 * extrapolated per rendered frame (4x the rendered rate), or STSS_GENERATED_FRAMES_AUTO:
 * 0 to 3 chosen after every frame from the render times measured, so that the presented
 * rate tracks target_display_hz (ask stss_next_generated_frames how many the next frame takes). */
#define STSS_MAX_GENERATED_FRAMES 3
#define STSS_GENERATED_FRAMES_AUTO -1

/* Result codes: the values of plugin.errors.Result. */
typedef enum stss_result {
    STSS_RESULT_OK = 0,
    STSS_RESULT_INVALID_ARGUMENT = 1,    /* a field has a wrong value, size, format or pitch */
    STSS_RESULT_INVALID_STATE = 2,       /* e.g. a call on a destroyed context */
    STSS_RESULT_UNSUPPORTED = 3,         /* a combination the plugin does not do */
    STSS_RESULT_BACKEND_UNAVAILABLE = 4, /* a back-end / device (or the embedded Python) is missing */
    STSS_RESULT_INTERNAL = 5,            /* an unexpected failure inside the library, never the
                                            answer to malformed input (that is INVALID_ARGUMENT,
                                            NULL_POINTER, ...): a bug to report, with the message */
    STSS_RESULT_NULL_POINTER = 6         /* a required pointer is NULL */
} stss_result;

/* Limits, checked before anything is read: every width and height (of the context's sizes
 * and of each stss_image as declared) is at most STSS_MAX_IMAGE_DIMENSION pixels, and every
 * |pitch_bytes| at most STSS_MAX_PITCH_BYTES; a context whose sizes exceed them is refused by
 * stss_create (STSS_RESULT_INVALID_ARGUMENT naming the field and the limit). An image may be
 * declared larger than the frame uses (dynamic resolution); only the rectangle in use (the
 * render size from the top-left, the display size for ui) is read, row by row pitch_bytes
 * apart: those bytes must lie in your allocation (its size cannot be checked from a pointer).
 * For a GL texture that rectangle is at GL's origin, rows 0 .. h-1 bottom-up: where
 * glViewport(0, 0, w, h) draws. */
#define STSS_MAX_IMAGE_DIMENSION 16384
#define STSS_MAX_PITCH_BYTES 1048576

/* Pixel formats of stss_image (host memory, native endianness, channels interleaved). */
typedef enum stss_format {
    STSS_FORMAT_UNKNOWN = 0,      /* invalid: an image must say its format */
    STSS_FORMAT_R32F = 1,         /* float: depth, roughness, metallic, masks */
    STSS_FORMAT_RG32F = 2,        /* float x2: motion */
    STSS_FORMAT_RGB32F = 3,       /* float x3: colour, albedo, normal; an output format */
    STSS_FORMAT_RGBA32F = 4,      /* float x4: colour (alpha ignored), ui; an output format (alpha = 1) */
    STSS_FORMAT_R16F = 5,         /* IEEE half floats, as the 32F formats */
    STSS_FORMAT_RG16F = 6,
    STSS_FORMAT_RGBA16F = 7,
    STSS_FORMAT_R32I = 8,         /* int32: object_id (0 = background) */
    STSS_FORMAT_R32UI = 9,        /* uint32: object_id */
    STSS_FORMAT_R8_UNORM = 10,    /* uint8 / 255: masks (reactive, transparency) */
    STSS_FORMAT_RGBA8_UNORM = 11  /* uint8 x4 / 255: ui (premultiplied), albedo */
} stss_format;

/* Where an stss_image lives (see "GPU handles" above). 0, what the *_init functions and
 * a zeroed struct give, is host memory. */
typedef enum stss_memory {
    STSS_MEMORY_HOST = 0,        /* data is a host pointer */
    STSS_MEMORY_CUDA = 1,        /* data is a CUDA device pointer (a context with device "cuda" only) */
    STSS_MEMORY_GL_TEXTURE = 2   /* gl_texture names an OpenGL GL_TEXTURE_2D (device "cuda" only) */
} stss_memory;

/* ContextDescription flags (0: LDR colour, linear depth, finite far plane, ...). */
#define STSS_FLAG_HDR 0x1                /* colour is linear HDR (any >= 0); unset: checked to be in [0, 1] */
#define STSS_FLAG_INVERTED_DEPTH 0x2     /* device depth is reversed-Z (1 = near plane) */
#define STSS_FLAG_INFINITE_FAR 0x4       /* the projection has no far plane (far_plane ignored) */
#define STSS_FLAG_JITTERED_MOTION 0x8    /* motion vectors include the jitter (the plugin removes it) */
#define STSS_FLAG_DISPLAY_RES_MOTION 0x10 /* motion vectors at display resolution, display pixels */
#define STSS_FLAG_DEPTH_IS_DEVICE 0x20   /* depth is OpenGL device depth in [0, 1]; unset: linear view depth */
#define STSS_FLAG_VALIDATION 0x40        /* extra checks that warn through the message callback (costs time) */

/* Message severities (plugin.Severity). */
#define STSS_SEVERITY_INFO 0
#define STSS_SEVERITY_WARNING 1
#define STSS_SEVERITY_ERROR 2

/* An opaque context handle (it encodes an id; the library never dereferences it). */
typedef struct stss_context stss_context;

/* Called from inside stss_dispatch / stss_create on the calling thread; `message` is valid
 * during the call only. Must not call back into the library. */
typedef void (*stss_message_callback)(int32_t severity, const char* message, void* user);

/* An image: host memory, or a GPU handle (memory). data == NULL (gl_texture == 0 for a GL
 * texture) means "not given" for optional images. Zero the struct (or set memory and
 * gl_texture) before filling it. */
typedef struct stss_image {
    void* data;            /* the top-left pixel (row 0 = top); aligned to the element size.
                              The plugin never writes input images. */
    int64_t pitch_bytes;   /* bytes from one row's start to the next's: >= width * bytes per
                              pixel and a multiple of the element size; 0 = tightly packed;
                              negative: rows go up in memory (a bottom-up GL read-back with
                              data pointing at its last row, which is the top of the image) */
    int32_t width;         /* pixels */
    int32_t height;        /* pixels */
    int32_t format;        /* an stss_format; a GL texture: its internal format, one of R32F, RG32F,
                              RGBA32F, R16F, RG16F, RGBA16F, R32I, R32UI, R8_UNORM (GL_R8),
                              RGBA8_UNORM (GL_RGBA8) -- CUDA cannot map RGB textures */
    int32_t memory;        /* an stss_memory: STSS_MEMORY_HOST (0) unless a GPU handle */
    uint32_t gl_texture;   /* STSS_MEMORY_GL_TEXTURE: the texture's GL name (data and pitch_bytes unused) */
} stss_image;

/* How a context is set up; fixed for its lifetime. Fill with stss_context_desc_init. */
typedef struct stss_context_desc {
    int32_t max_render_width;   /* pixels: the largest render a frame may have */
    int32_t max_render_height;
    int32_t display_width;      /* pixels of the output */
    int32_t display_height;
    const char* pass_name;      /* NULL: "stss_recurrent" (the default), or any pass of the capabilities' "passes" */
    const char* backend;        /* "torch" (NULL), "onnxruntime", "tensorrt" (neural passes) */
    const char* precision;      /* "fp32" (NULL) or "fp16" */
    const char* device;         /* "cpu" (NULL) or "cuda" */
    int32_t generated_frames;   /* frames extrapolated per rendered frame: 0 to 3, or STSS_GENERATED_FRAMES_AUTO */
    uint32_t flags;             /* STSS_FLAG_* */
    stss_message_callback message_callback; /* optional: warnings and info */
    void* message_user;         /* passed back to message_callback */
    double target_display_hz;   /* STSS_GENERATED_FRAMES_AUTO: presented frames per second to track (> 0);
                                   otherwise 0 */
} stss_context_desc;

/* The cheap G-buffers of one extrapolated display frame (no colour): generated frame k
 * (0-based) of n is the instant (k + 1) / (n + 1) of a frame time after the rendered frame.
 * Its motion vectors point to the previous DISPLAY frame (the rendered one, for the first). */
typedef struct stss_generated_desc {
    stss_image depth;          /* render size, see STSS_FLAG_DEPTH_IS_DEVICE */
    stss_image motion;         /* render size, 2 channels, pixels */
    stss_image albedo;         /* 3+ channels, linear base colour in [0, 1]   } required by */
    stss_image normal;         /* 3+ channels, unit view-space normal         } the "stss" pass */
    stss_image roughness;      /* 1 channel in [0, 1]                         } (optional for */
    stss_image metallic;       /* 1 channel in [0, 1]                         } other passes: */
    stss_image object_id;      /* 1 channel integer ids, 0 = background       } data = NULL) */
    stss_image ui;             /* optional: display size, premultiplied RGBA; NULL: the rendered frame's */
    double jitter_x;           /* this G-buffer render's jitter, render pixels, in [-0.5, 0.5] */
    double jitter_y;
    double view[16];           /* unjittered view, column-major */
    double proj[16];           /* unjittered projection, column-major */
} stss_generated_desc;

/* One rendered frame and the G-buffers of the frames to extrapolate after it.
 * Fill with stss_frame_desc_init (motion scale 1, pre-exposure 1, identity matrices). */
typedef struct stss_frame_desc {
    int64_t frame_index;       /* grows by exactly 1 per dispatch: any other step (a gap) is refused
                                  (STSS_RESULT_INVALID_ARGUMENT) unless reset = 1 */
    stss_image color;          /* render size, RGB(A), linear colour (alpha ignored) */
    stss_image depth;          /* render size, 1 channel */
    stss_image motion;         /* render size (display size with STSS_FLAG_DISPLAY_RES_MOTION), 2 channels,
                                  to the previous DISPLAY frame (the generated one, if any) */
    stss_image albedo;         /* G-buffers: as in stss_generated_desc */
    stss_image normal;
    stss_image roughness;
    stss_image metallic;
    stss_image object_id;
    stss_image reactive;       /* optional, 1 channel in [0, 1]: how much to trust the new colour */
    stss_image transparency;   /* optional, 1 channel in [0, 1] */
    stss_image hudless;        /* optional, RGB(A): colour before the HUD was drawn */
    stss_image ui;             /* optional, display size, premultiplied RGBA, composited last */
    double jitter_x;           /* render pixels, each in [-0.5, 0.5] */
    double jitter_y;
    double motion_scale_x;     /* multiplies motion before use (e.g. UV -> pixels); usually 1 */
    double motion_scale_y;
    double frame_time_ms;      /* time since the previous rendered frame, MILLISECONDS (>= 1) */
    double near_plane;         /* camera near distance, scene units ("frame.near" in messages) */
    double far_plane;          /* camera far distance (ignored with STSS_FLAG_INFINITE_FAR) */
    double fov_y_rad;          /* vertical field of view, radians */
    double pre_exposure;       /* colour was multiplied by this; the history is kept without it and the
                                  outputs carry it (multiplied by it, like the input); usually 1 */
    int32_t reset;             /* 1: camera cut, drop the history */
    int32_t render_width;      /* the rendered part of the images (dynamic resolution); */
    int32_t render_height;     /* 0, 0: the colour image's size */
    double view[16];           /* unjittered view, column-major */
    double proj[16];           /* unjittered projection, column-major */
    const double* prev_view;   /* optional 16 doubles: the previous frame's view (validation) */
    const double* prev_proj;   /* optional 16 doubles */
    const stss_generated_desc* generated; /* generated_count descriptions, in display order */
    int32_t generated_count;   /* = stss_context_desc.generated_frames (STSS_GENERATED_FRAMES_AUTO: the count
                                  stss_next_generated_frames gives) */
    double render_time_ms;     /* optional: what rendering this frame cost, ms (the engine's CPU or GPU time,
                                  whichever is longer): STSS_GENERATED_FRAMES_AUTO follows it. 0: frame_time_ms */
} stss_frame_desc;

/* One generated frame's output: the caller provides the buffer, the library the time. */
typedef struct stss_generated_output {
    stss_image color;          /* in: display size, RGB32F or RGBA32F (a GL texture: RGBA32F or RGBA16F),
                                  caller-allocated */
    double present_time_ms;    /* out: when to present it, after the rendered frame's present: frame k of n
                                  at (k + 1) / (n + 1) x frame_time_ms */
} stss_generated_output;

/* Where stss_dispatch writes. The caller allocates every image. */
typedef struct stss_dispatch_output {
    stss_image color;          /* in: the upscaled rendered frame, display size, RGB32F or RGBA32F
                                  (a GL texture: RGBA32F or RGBA16F) */
    stss_generated_output* generated; /* in: generated_count entries */
    int32_t generated_count;   /* in: = frame->generated_count */
    int32_t reset;             /* out: 1 when the history was dropped before this frame */
    int32_t warning_count;     /* out: warnings of this dispatch (also sent to the callback) */
    double inputs_ms;          /* out: per stage, ms: validating and converting the inputs */
    double upscale_ms;         /* out: the rendered frame */
    double generate_ms;        /* out: the generated frame(s) */
    double ui_ms;              /* out: resampling, un-exposing, UI composition */
    double total_ms;           /* out: the whole stss_dispatch call inside the library */
    int32_t generated_frames;  /* out: frames this dispatch generated (with STSS_GENERATED_FRAMES_AUTO its choice) */
    int32_t next_generated_frames; /* out: the generated_count the next dispatch takes */
} stss_dispatch_output;

/* The library's version ("0.1.0 (abi 3)") and STSS_ABI_VERSION as built. No Python needed. */
STSS_API const char* stss_version(void);
STSS_API int32_t stss_abi_version(void);

/* The message of the last call that failed on this thread; "" after a successful call.
 * Valid until the next call on this thread. Never NULL. */
STSS_API const char* stss_last_error(void);

/* Defaults (no Python needed): zero sizes, NULL strings (= the defaults), 1 generated
 * frame, STSS_FLAG_HDR, no target rate; for frames: motion scale 1, pre-exposure 1, identity
 * matrices, no render time. */
STSS_API void stss_context_desc_init(stss_context_desc* desc);
STSS_API void stss_frame_desc_init(stss_frame_desc* frame);
STSS_API void stss_generated_desc_init(stss_generated_desc* generated);

/* Bytes per pixel of an stss_format, 0 for an unknown one. */
STSS_API int32_t stss_format_bytes_per_pixel(int32_t format);

/* The jitter phase count for a scale (int(8 * (display / render)^2): 32 at 2x; 0 for a
 * width <= 0) and the jitter (render pixels, each in [-0.5, 0.5)) of display frame `index`
 * (plugin.jitter_offset; (0, 0) for phase_count <= 0; x or y may be NULL). */
STSS_API int32_t stss_jitter_phase_count(int32_t render_width, int32_t display_width);
STSS_API void stss_jitter_offset(int64_t index, int32_t phase_count, double* x, double* y);

/* What this installation can do, as JSON (plugin.capabilities()): passes, back-ends and
 * why one is unavailable, precisions, devices. *needed (optional, unless json_out is
 * NULL) receives the size in bytes including the terminating NUL. json_out = NULL with
 * capacity = 0 asks for the size only (STSS_RESULT_OK); a capacity too small returns
 * STSS_RESULT_INVALID_ARGUMENT, writes "" (when capacity > 0) and still sets *needed. */
STSS_API int32_t stss_query_capabilities(char* json_out, size_t capacity, size_t* needed);

/* Create a context. On failure *out is set to NULL. The first call of the process starts
 * the embedded Python (a few seconds: it imports PyTorch). A back-end that cannot run on
 * this machine (as stss_query_capabilities reports it) is refused here with
 * STSS_RESULT_BACKEND_UNAVAILABLE, sizes beyond STSS_MAX_IMAGE_DIMENSION with
 * STSS_RESULT_INVALID_ARGUMENT. */
STSS_API int32_t stss_create(const stss_context_desc* desc, stss_context** out);

/* Upscale one rendered frame into output->color and extrapolate the generated frame(s)
 * into output->generated[k].color. On failure the context is unchanged (fix the frame
 * and dispatch it again) and the output buffers are not written. */
STSS_API int32_t stss_dispatch(stss_context* context, const stss_frame_desc* frame,
                               stss_dispatch_output* output);

/* How many generated frames (stss_frame_desc.generated_count) the next stss_dispatch takes:
 * the context's fixed generated_frames, or with STSS_GENERATED_FRAMES_AUTO the choice made
 * after the last frame (1 before the first). Ask before rendering the next frame's
 * G-buffers: that many, at the instants (k + 1) / (n + 1) of a frame time after it. */
STSS_API int32_t stss_next_generated_frames(stss_context* context, int32_t* count);

/* Drop the history now (as reset = 1 on the next frame does). */
STSS_API int32_t stss_reset(stss_context* context);

/* Unregister the OpenGL textures this context registered with CUDA (GPU handles); they
 * are registered again when next used. Call it, with their GL context current, before
 * deleting or re-creating a texture you passed by name. Nothing to do on a CPU context. */
STSS_API int32_t stss_release_gpu_resources(stss_context* context);

/* Release the context. A destroyed handle stays invalid: any later call with it
 * (stss_destroy included) returns STSS_RESULT_INVALID_STATE. */
STSS_API int32_t stss_destroy(stss_context* context);

/* ---- cffi:end -------------------------------------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* STSS_PLUGIN_H */
