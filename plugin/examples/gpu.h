/* gpu.h - what the example engine needs to hand the plugin GPU images, loaded at run time
 * with dlopen, so that engine.c builds and runs without CUDA or OpenGL headers or libraries:
 *   - the CUDA runtime (cudaMalloc, cudaMemcpy, cudaFree): images as CUDA device pointers;
 *   - a headless OpenGL context through EGL and the few GL calls that make, fill and read
 *     textures: images as GL texture names.
 * The plugin needs a context on "cuda" for either, and for GL textures an OpenGL context on
 * the NVIDIA driver, current on the thread that calls stss_dispatch.
 *
 * The CUDA runtime is looked for as $STSS_CUDART, then the libcudart the process already
 * loaded (PyTorch's, once stss_create made a "cuda" context), then on the loader's path.
 */
#ifndef STSS_EXAMPLE_GPU_H
#define STSS_EXAMPLE_GPU_H

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RTLD_NOLOAD
#define RTLD_NOLOAD 0x00004 /* glibc's value; a GNU extension hidden by _POSIX_C_SOURCE */
#endif
/* fn = the symbol name from lib (or through get_proc), typed as fn is */
#define LOAD(fn, lib, name) ((fn) = (__typeof__(fn))dlsym((lib), (name)))
#define PROC(fn, get_proc, name) ((fn) = (__typeof__(fn))(get_proc)(name))

/* ---- CUDA runtime ---------------------------------------------------------------------- */

enum { CUDA_MEMCPY_HOST_TO_DEVICE = 1, CUDA_MEMCPY_DEVICE_TO_HOST = 2 };

static struct {
    int (*malloc_)(void** ptr, size_t size);
    int (*memcpy_)(void* dst, const void* src, size_t count, int kind);
    int (*free_)(void* ptr);
    const char* (*error_string)(int error);
} cuda;

/* 0 when the CUDA runtime's functions are loaded; otherwise why not in why[n]. */
static int cuda_load(char* why, size_t n)
{
    const char* names[] = {getenv("STSS_CUDART"), "libcudart.so.13", "libcudart.so.12", "libcudart.so", NULL};
    void* lib = NULL;
    for (int pass = 0; pass < 2 && !lib; ++pass)  /* already loaded first, then anywhere */
        for (size_t i = 0; i < sizeof names / sizeof names[0] - 1 && !lib; ++i)
            if (names[i] && names[i][0])
                lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL | (pass == 0 ? RTLD_NOLOAD : 0));
    if (!lib) {
        snprintf(why, n, "no CUDA runtime (libcudart) found: set STSS_CUDART to its path (%s)", dlerror());
        return 1;
    }
    LOAD(cuda.malloc_, lib, "cudaMalloc");
    LOAD(cuda.memcpy_, lib, "cudaMemcpy");
    LOAD(cuda.free_, lib, "cudaFree");
    LOAD(cuda.error_string, lib, "cudaGetErrorString");
    if (!cuda.malloc_ || !cuda.memcpy_ || !cuda.free_ || !cuda.error_string) {
        snprintf(why, n, "libcudart lacks cudaMalloc / cudaMemcpy / cudaFree / cudaGetErrorString");
        return 1;
    }
    return 0;
}

/* A device copy of size bytes at host (allocated on first use into *dev); 0 on success. */
static int cuda_upload(void** dev, const void* host, size_t size)
{
    int e = 0;
    if (!*dev && (e = cuda.malloc_(dev, size)) != 0) {
        printf("cudaMalloc(%zu): %s\n", size, cuda.error_string(e));
        return e;
    }
    if ((e = cuda.memcpy_(*dev, host, size, CUDA_MEMCPY_HOST_TO_DEVICE)) != 0)
        printf("cudaMemcpy to the device: %s\n", cuda.error_string(e));
    return e;
}

/* ---- EGL + OpenGL ------------------------------------------------------------------------ */

typedef void* egl_ptr;
enum {
    EGL_NONE_ = 0x3038, EGL_SURFACE_TYPE_ = 0x3033, EGL_PBUFFER_BIT_ = 0x0001, EGL_RENDERABLE_TYPE_ = 0x3040,
    EGL_OPENGL_BIT_ = 0x0008, EGL_OPENGL_API_ = 0x30A2, EGL_PLATFORM_DEVICE_EXT_ = 0x313F,
    EGL_CONTEXT_MAJOR_VERSION_ = 0x3098, EGL_CONTEXT_MINOR_VERSION_ = 0x30FB,
    GL_TEXTURE_2D_ = 0x0DE1, GL_RGBA32F_ = 0x8814, GL_RG32F_ = 0x8230, GL_RGBA_ = 0x1908, GL_RG_ = 0x8227,
    GL_FLOAT_ = 0x1406, GL_TEXTURE_MIN_FILTER_ = 0x2801, GL_TEXTURE_MAG_FILTER_ = 0x2800, GL_NEAREST_ = 0x2600,
    GL_RENDERER_ = 0x1F01, GL_UNPACK_ALIGNMENT_ = 0x0CF5, GL_PACK_ALIGNMENT_ = 0x0D05
};

static struct {
    void (*gen_textures)(int n, uint32_t* names);
    void (*delete_textures)(int n, const uint32_t* names);
    void (*bind_texture)(uint32_t target, uint32_t name);
    void (*tex_image_2d)(uint32_t target, int level, int internal, int w, int h, int border, uint32_t format,
                         uint32_t type, const void* data);
    void (*tex_parameteri)(uint32_t target, uint32_t name, int value);
    void (*get_tex_image)(uint32_t target, int level, uint32_t format, uint32_t type, void* data);
    void (*pixel_storei)(uint32_t name, int value);
    const unsigned char* (*get_string)(uint32_t name);
    uint32_t (*get_error)(void);
    void (*finish)(void);
} gl;

/* Makes a headless OpenGL 4.3 context current on this thread (EGL device platform when the
 * driver has it, the default display otherwise); 0 on success, else why in why[n]. */
static int gl_context(char* why, size_t n)
{
    void* lib = dlopen(getenv("GLCONTEXT_LINUX_LIBEGL") ? getenv("GLCONTEXT_LINUX_LIBEGL") : "libEGL.so.1",
                       RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        snprintf(why, n, "no libEGL.so.1 (%s)", dlerror());
        return 1;
    }
    void* (*get_proc)(const char*) = NULL;
    LOAD(get_proc, lib, "eglGetProcAddress");
    if (!get_proc) {
        snprintf(why, n, "libEGL has no eglGetProcAddress");
        return 1;
    }
    egl_ptr (*get_display)(egl_ptr) = NULL;
    egl_ptr (*get_platform_display)(int, egl_ptr, const int*) = NULL;
    int (*query_devices)(int, egl_ptr*, int*) = NULL;
    int (*initialize)(egl_ptr, int*, int*) = NULL;
    int (*bind_api)(int) = NULL;
    int (*choose_config)(egl_ptr, const int*, egl_ptr*, int, int*) = NULL;
    egl_ptr (*create_context)(egl_ptr, egl_ptr, egl_ptr, const int*) = NULL;
    int (*make_current)(egl_ptr, egl_ptr, egl_ptr, egl_ptr) = NULL;
    int (*get_error)(void) = NULL;
    PROC(get_display, get_proc, "eglGetDisplay");
    PROC(get_platform_display, get_proc, "eglGetPlatformDisplayEXT");
    PROC(query_devices, get_proc, "eglQueryDevicesEXT");
    PROC(initialize, get_proc, "eglInitialize");
    PROC(bind_api, get_proc, "eglBindAPI");
    PROC(choose_config, get_proc, "eglChooseConfig");
    PROC(create_context, get_proc, "eglCreateContext");
    PROC(make_current, get_proc, "eglMakeCurrent");
    PROC(get_error, get_proc, "eglGetError");
    if (!initialize || !bind_api || !choose_config || !create_context || !make_current || !get_error) {
        snprintf(why, n, "libEGL lacks core EGL functions");
        return 1;
    }
    egl_ptr display = NULL, devices[8];
    int count = 0, major = 0, minor = 0;
    if (query_devices && get_platform_display && query_devices(8, devices, &count) && count > 0)
        display = get_platform_display(EGL_PLATFORM_DEVICE_EXT_, devices[0], NULL);
    if (!display && get_display)
        display = get_display(NULL);  /* EGL_DEFAULT_DISPLAY */
    if (!display || !initialize(display, &major, &minor)) {
        snprintf(why, n, "no EGL display (eglGetError 0x%x)", get_error ? get_error() : 0);
        return 1;
    }
    const int config_attribs[] = {EGL_SURFACE_TYPE_, EGL_PBUFFER_BIT_, EGL_RENDERABLE_TYPE_, EGL_OPENGL_BIT_,
                                  EGL_NONE_};
    const int context_attribs[] = {EGL_CONTEXT_MAJOR_VERSION_, 4, EGL_CONTEXT_MINOR_VERSION_, 3, EGL_NONE_};
    egl_ptr config = NULL, context = NULL;
    int configs = 0;
    if (!bind_api(EGL_OPENGL_API_) || !choose_config(display, config_attribs, &config, 1, &configs) || configs < 1
        || !(context = create_context(display, config, NULL, context_attribs))
        || !make_current(display, NULL, NULL, context)) {
        snprintf(why, n, "no OpenGL 4.3 context through EGL %d.%d (eglGetError 0x%x)", major, minor, get_error());
        return 1;
    }
    PROC(gl.gen_textures, get_proc, "glGenTextures");
    PROC(gl.delete_textures, get_proc, "glDeleteTextures");
    PROC(gl.bind_texture, get_proc, "glBindTexture");
    PROC(gl.tex_image_2d, get_proc, "glTexImage2D");
    PROC(gl.tex_parameteri, get_proc, "glTexParameteri");
    PROC(gl.get_tex_image, get_proc, "glGetTexImage");
    PROC(gl.pixel_storei, get_proc, "glPixelStorei");
    PROC(gl.get_string, get_proc, "glGetString");
    PROC(gl.get_error, get_proc, "glGetError");
    PROC(gl.finish, get_proc, "glFinish");
    if (!gl.gen_textures || !gl.delete_textures || !gl.bind_texture || !gl.tex_image_2d || !gl.tex_parameteri
        || !gl.get_tex_image || !gl.pixel_storei || !gl.get_string || !gl.get_error || !gl.finish) {
        snprintf(why, n, "eglGetProcAddress did not give the GL functions needed");
        return 1;
    }
    gl.pixel_storei(GL_UNPACK_ALIGNMENT_, 1);
    gl.pixel_storei(GL_PACK_ALIGNMENT_, 1);
    return 0;
}

/* A float texture of w x h with 2 or 4 channels holding rows (row 0 = top; GL's rows go
 * bottom-up, so they are uploaded flipped); *name is created on first use. */
static void gl_upload(uint32_t* name, const float* rows, int w, int h, int channels)
{
    if (!*name) {
        gl.gen_textures(1, name);
        gl.bind_texture(GL_TEXTURE_2D_, *name);
        gl.tex_parameteri(GL_TEXTURE_2D_, GL_TEXTURE_MIN_FILTER_, GL_NEAREST_);
        gl.tex_parameteri(GL_TEXTURE_2D_, GL_TEXTURE_MAG_FILTER_, GL_NEAREST_);
    }
    size_t row = (size_t)w * channels;
    float* flipped = rows ? malloc(row * h * sizeof(float)) : NULL;  /* rows NULL: storage only */
    for (int j = 0; flipped && j < h; ++j)
        memcpy(flipped + (size_t)(h - 1 - j) * row, rows + (size_t)j * row, row * sizeof(float));
    gl.bind_texture(GL_TEXTURE_2D_, *name);
    gl.tex_image_2d(GL_TEXTURE_2D_, 0, channels == 4 ? GL_RGBA32F_ : GL_RG32F_, w, h, 0,
                    channels == 4 ? GL_RGBA_ : GL_RG_, GL_FLOAT_, flipped);
    free(flipped);
}

/* An RGBA32F texture's pixels into rows (row 0 = top). */
static void gl_download_rgba(uint32_t name, float* rows, int w, int h)
{
    size_t row = (size_t)w * 4;
    float* gl_rows = malloc(row * h * sizeof(float));
    gl.bind_texture(GL_TEXTURE_2D_, name);
    gl.get_tex_image(GL_TEXTURE_2D_, 0, GL_RGBA_, GL_FLOAT_, gl_rows);
    for (int j = 0; j < h; ++j)
        memcpy(rows + (size_t)j * row, gl_rows + (size_t)(h - 1 - j) * row, row * sizeof(float));
    free(gl_rows);
}

#endif
