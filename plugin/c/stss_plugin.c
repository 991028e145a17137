/* stss_plugin.c - the C side of libstss_plugin.so: the exported stss_* functions, the
 * per-thread error message and the start of the embedded Python.
 *
 * Built by `python -m plugin.c_abi --build` together with cffi's generated module
 * (_stss_plugin.c, which holds the Python entry points stss__py_* and the init code).
 * The functions that need Python start the interpreter once, call its entry point and
 * map the outcome to an stss_result; the pure helpers (stss_version, stss_last_error, the
 * *_init functions, the jitter helpers) are plain C and never start Python.
 *
 * stss_build_config.h is written by the build next to the library: the paths and the
 * version baked into this build (STSS__PYTHON_EXECUTABLE, STSS__LIBPYTHON, STSS__VERSION,
 * all C string literals). */
#include <Python.h>

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "stss_build_config.h"
#include "stss_plugin.h"
#include "stss_plugin_internal.h"

#define STSS__HIDDEN __attribute__((visibility("hidden")))

#define STSS__NOT_RUN                                                                  \
    "the plugin's Python side did not run: the library's init code failed (cffi printed " \
    "why on stderr); rebuild with python -m plugin.c_abi --build"

static _Thread_local char stss__error[STSS__ERROR_CAPACITY];

STSS__HIDDEN void stss__set_error(const char* message)
{
    snprintf(stss__error, sizeof stss__error, "%s", message ? message : "");
}

/* ---- the embedded interpreter ---- */

static pthread_once_t stss__python_once = PTHREAD_ONCE_INIT;
static int stss__python_failed = 0;
static char stss__python_message[1024];

static void stss__start_python(void)
{
    PyGILState_STATE gil = PyGILState_UNLOCKED;
    int ours = 0;
    /* extension modules (numpy, torch) resolve CPython's symbols globally: make libpython
       global even when the host dlopen()ed this library with RTLD_LOCAL */
    (void)dlopen(STSS__LIBPYTHON, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
    if (Py_IsInitialized()) {
        gil = PyGILState_Ensure(); /* a Python host: cffi uses its interpreter */
    }
    else {
        PyConfig config;
        PyConfig_InitPythonConfig(&config);
        config.install_signal_handlers = 0; /* the engine owns the signals */
        config.parse_argv = 0;
        /* the engine's PYTHONHOME / PYTHONPATH (set for some other Python) must not break us */
        config.use_environment = 0;
        /* the venv's interpreter as program name: CPython finds pyvenv.cfg, sys.prefix = the venv */
        PyStatus status = PyConfig_SetBytesString(&config, &config.program_name, STSS__PYTHON_EXECUTABLE);
        if (!PyStatus_Exception(status))
            status = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(status)) {
            stss__python_failed = 1;
            snprintf(stss__python_message, sizeof stss__python_message,
                     "the embedded Python (%s) failed to start: %s%s%s", STSS__PYTHON_EXECUTABLE,
                     status.func ? status.func : "", status.func ? ": " : "",
                     status.err_msg ? status.err_msg : "unknown error");
            return;
        }
        ours = 1; /* this thread holds the GIL */
    }
#if PY_VERSION_HEX < 0x030C0000
    /* cffi's first call spin-waits until PyCapsule_Type.tp_version_tag is 0 (its start-up
       lock on CPython < 3.12), but a running interpreter may have given that type a
       version tag (any attribute lookup on a capsule): it would spin forever. Invalidate
       the tag (PyType_Modified sets it to 0) while holding the GIL, so nothing can set it
       again before cffi's start-up below has taken and released its lock. */
    PyType_Modified(&PyCapsule_Type);
#endif
    /* cffi's start-up (the init code: sys.path, import plugin.c_abi) now, under the GIL,
       once: later calls take cffi's fast path */
    if (stss__py_init() < STSS__TAG) {
        stss__python_failed = 1;
        snprintf(stss__python_message, sizeof stss__python_message, "%s", STSS__NOT_RUN);
    }
    if (ours)
        (void)PyEval_SaveThread(); /* release the GIL: cffi takes it per call */
    else
        PyGILState_Release(gil);
}

static int stss__ensure_python(void)
{
    pthread_once(&stss__python_once, stss__start_python);
    if (stss__python_failed) {
        stss__set_error(stss__python_message);
        return -1;
    }
    return 0;
}

static int32_t stss__result(int32_t tagged)
{
    if (tagged < STSS__TAG) { /* cffi returned 0: the library's Python init code failed */
        stss__set_error(STSS__NOT_RUN);
        return STSS_RESULT_INTERNAL;
    }
    return tagged - STSS__TAG;
}

#define STSS__CALL(expr)                                                               \
    do {                                                                               \
        stss__error[0] = '\0';                                                         \
        if (stss__ensure_python() != 0)                                                \
            return STSS_RESULT_BACKEND_UNAVAILABLE;                                    \
        return stss__result(expr);                                                     \
    } while (0)

/* ---- exported: Python ---- */

STSS_API int32_t stss_query_capabilities(char* json_out, size_t capacity, size_t* needed)
{
    STSS__CALL(stss__py_query_capabilities(json_out, capacity, needed));
}

STSS_API int32_t stss_create(const stss_context_desc* desc, stss_context** out)
{
    STSS__CALL(stss__py_create(desc, out));
}

STSS_API int32_t stss_dispatch(stss_context* context, const stss_frame_desc* frame, stss_dispatch_output* output)
{
    STSS__CALL(stss__py_dispatch(context, frame, output));
}

STSS_API int32_t stss_reset(stss_context* context)
{
    STSS__CALL(stss__py_reset(context));
}

STSS_API int32_t stss_next_generated_frames(stss_context* context, int32_t* count)
{
    STSS__CALL(stss__py_next_generated_frames(context, count));
}

STSS_API int32_t stss_release_gpu_resources(stss_context* context)
{
    STSS__CALL(stss__py_release_gpu_resources(context));
}

STSS_API int32_t stss_destroy(stss_context* context)
{
    STSS__CALL(stss__py_destroy(context));
}

/* ---- exported: plain C ---- */

STSS_API const char* stss_version(void) { return STSS__VERSION; }

STSS_API int32_t stss_abi_version(void) { return STSS_ABI_VERSION; }

STSS_API const char* stss_last_error(void) { return stss__error; }

static void stss__identity(double* m)
{
    for (int i = 0; i < 16; ++i)
        m[i] = (i % 5 == 0) ? 1.0 : 0.0;
}

STSS_API void stss_context_desc_init(stss_context_desc* desc)
{
    if (!desc)
        return;
    memset(desc, 0, sizeof *desc);
    desc->generated_frames = 1;
    desc->flags = STSS_FLAG_HDR;
}

STSS_API void stss_generated_desc_init(stss_generated_desc* generated)
{
    if (!generated)
        return;
    memset(generated, 0, sizeof *generated);
    stss__identity(generated->view);
    stss__identity(generated->proj);
}

STSS_API void stss_frame_desc_init(stss_frame_desc* frame)
{
    if (!frame)
        return;
    memset(frame, 0, sizeof *frame);
    frame->motion_scale_x = frame->motion_scale_y = 1.0;
    frame->pre_exposure = 1.0;
    stss__identity(frame->view);
    stss__identity(frame->proj);
}

STSS_API int32_t stss_format_bytes_per_pixel(int32_t format)
{
    switch (format) {
    case STSS_FORMAT_R32F: case STSS_FORMAT_R32I: case STSS_FORMAT_R32UI: case STSS_FORMAT_RGBA8_UNORM: return 4;
    case STSS_FORMAT_RG32F: case STSS_FORMAT_RGBA16F: return 8;
    case STSS_FORMAT_RGB32F: return 12;
    case STSS_FORMAT_RGBA32F: return 16;
    case STSS_FORMAT_R16F: return 2;
    case STSS_FORMAT_RG16F: return 4;
    case STSS_FORMAT_R8_UNORM: return 1;
    default: return 0;
    }
}

STSS_API int32_t stss_jitter_phase_count(int32_t render_width, int32_t display_width)
{
    if (render_width <= 0 || display_width <= 0)
        return 0;
    double r = (double)display_width / (double)render_width;
    double n = 8.0 * r * r;
    return n >= (double)INT32_MAX ? INT32_MAX : (int32_t)n; /* a double beyond int32 is no int32_t */
}

static double stss__halton(int64_t index, int32_t base)
{
    double result = 0.0, f = 1.0;
    while (index > 0) {
        f /= base;
        result += f * (double)(index % base);
        index /= base;
    }
    return result;
}

STSS_API void stss_jitter_offset(int64_t index, int32_t phase_count, double* x, double* y)
{
    double jx = 0.0, jy = 0.0;
    if (phase_count > 0) {
        int64_t i = index % phase_count;
        if (i < 0)
            i += phase_count;
        jx = stss__halton(i + 1, 2) - 0.5;
        jy = stss__halton(i + 1, 3) - 0.5;
    }
    if (x)
        *x = jx;
    if (y)
        *y = jy;
}
