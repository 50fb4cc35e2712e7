// checkpoint.h: reading and writing safetensors files, so that Python users can open
// kronformer's weights with `safetensors` or numpy.
// Layout: uint64 little-endian header length N; N bytes of JSON
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
// (padded with spaces to a multiple of 8); then the raw little-endian data.
#ifndef KF_CHECKPOINT_H
#define KF_CHECKPOINT_H

#include "common.h"

typedef struct {
    const char *name;
    const real *data;      // numel values; written as F32 whatever `real` is
    int ndim;
    int shape[4];
    const int32_t *ints;   // or, instead of data, numel integers, written as I32
} StTensor;

// Writes atomically: PATH.tmp, fsync, rename. An existing PATH is untouched on error.
// meta: nmeta key/value string pairs (meta[2i], meta[2i+1]).
int st_save(const char *path, const StTensor *tensors, int n, const char *const *meta,
            int nmeta, char *err);

typedef struct StFile StFile; // an opened file: header parsed, data in memory
StFile *st_open(const char *path, char *err);
void st_close(StFile *f);
// Metadata value for key, or NULL.
const char *st_meta(const StFile *f, const char *key);
// Copies tensor `name` (F32 in the file) into out, converting to real. Fails with a
// message if it is missing or its shape differs from ndim/shape.
int st_read(const StFile *f, const char *name, real *out, int ndim, const int *shape,
            char *err);
// The same for an I32 tensor; *present = 0 (and 0 returned) if the file has no tensor
// `name`, when present is not NULL.
int st_read_ints(const StFile *f, const char *name, int32_t *out, int ndim,
                 const int *shape, int *present, char *err);

#endif
