#ifndef THOUGHTCRIME_CHDF5_SHIM_H
#define THOUGHTCRIME_CHDF5_SHIM_H
// HDF5 exposes its predefined types and property lists as macros that expand to globals
// behind H5open(); Swift cannot import those macros, so these inline functions return them.
#include <hdf5.h>

static inline hid_t tc_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t tc_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t tc_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t tc_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t tc_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t tc_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t tc_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t tc_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t tc_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t tc_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t tc_h5s_all(void) { return H5S_ALL; }
static inline unsigned tc_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned tc_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned tc_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned tc_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline size_t tc_h5t_variable(void) { return H5T_VARIABLE; }

/// Initialises the library without its exit handler (which, after a write failed for lack of
/// space, dereferences freed state and crashes the process) and silences its error printing.
/// Must run before any other HDF5 call: the first call initialises the library.
static inline void tc_h5_prepare(void) {
    H5dont_atexit();
    H5open();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/// Silences HDF5's automatic error-stack printing; callers report errors themselves.
static inline void tc_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// Closes every dataset, group, datatype and attribute still open in `file` (not the file):
/// after a failed write, so that closing the file has nothing left to flush through them.
static inline void tc_h5_close_all_objects(hid_t file) {
    unsigned types = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR;
    ssize_t count = H5Fget_obj_count(file, types);
    for (ssize_t left = count; left > 0; left--) {
        hid_t id = -1;
        if (H5Fget_obj_ids(file, types, 1, &id) < 1) break;
        switch (H5Iget_type(id)) {
        case H5I_DATASET: H5Dclose(id); break;
        case H5I_GROUP: H5Gclose(id); break;
        case H5I_DATATYPE: H5Tclose(id); break;
        case H5I_ATTR: H5Aclose(id); break;
        default: return;
        }
    }
}

/// The HDF5 library version as major*10000 + minor*100 + release.
static inline int tc_h5_version(void) {
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    return (int)(maj * 10000 + min * 100 + rel);
}
#endif
