/* stss_plugin_internal.h - between the library's C side (stss_plugin.c) and its Python
 * side (plugin/c_abi.py). Not part of the ABI: engines include stss_plugin.h only.
 *
 * plugin/c_abi.py reads this file at build time: the declarations between
 * "cffi:embedding:begin" and "cffi:embedding:end" become cffi's embedding API (functions
 * implemented in Python, called from C), those between "cffi:cdef:begin" and
 * "cffi:cdef:end" are C functions the Python side calls; STSS__TAG and
 * STSS__ERROR_CAPACITY are read from here too, so the two sides cannot disagree. */
#ifndef STSS_PLUGIN_INTERNAL_H
#define STSS_PLUGIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "stss_plugin.h"

/* The Python entry points return STSS__TAG + an stss_result, so that cffi's "the init code
 * failed, returning 0" is told apart from STSS_RESULT_OK. */
#define STSS__TAG 0x100

/* Bytes of the per-thread message stss_last_error() returns (NUL included). */
#define STSS__ERROR_CAPACITY 4096

/* ---- cffi:embedding:begin ---- */
int32_t stss__py_init(void);
int32_t stss__py_query_capabilities(char* json_out, size_t capacity, size_t* needed);
int32_t stss__py_create(const stss_context_desc* desc, stss_context** out);
int32_t stss__py_dispatch(stss_context* context, const stss_frame_desc* frame, stss_dispatch_output* output);
int32_t stss__py_reset(stss_context* context);
int32_t stss__py_next_generated_frames(stss_context* context, int32_t* count);
int32_t stss__py_release_gpu_resources(stss_context* context);
int32_t stss__py_destroy(stss_context* context);
/* ---- cffi:embedding:end ---- */

/* ---- cffi:cdef:begin ---- */
void stss__set_error(const char* message);
/* ---- cffi:cdef:end ---- */

#endif /* STSS_PLUGIN_INTERNAL_H */
