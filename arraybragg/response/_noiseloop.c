/* noisify's noise loop as a small C extension: the arithmetic of arraybragg/response/_compiled.py,
 * and its running double sums of float images (running_sum).
 *
 * Built by the package's own build when a C compiler is there (optional: without it,
 * _compiled.py falls back to numba, then to pure Python).  It saves numba's import and
 * first-dispatch cost (over a second per process).  C float variables of noisify are
 * doubles rounded through float (F32); build without FMA contraction (-ffp-contract=off)
 * so that every product and sum is rounded as written.
 *
 * State layout as _compiled.py: ints = [shot state, calibration state, iy, table[0..31]]
 * (int64), floats = [spare present, spare, poidev's mean, g, sq, log mean] (double).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef M_PI /* not in strict C (MSVC without _USE_MATH_DEFINES); math.pi's value */
#define M_PI 3.14159265358979323846
#endif
#define MODULUS 2147483647LL
#define F32(x) ((double)(float)(x))

static const double LANCZOS[6] = {76.18009172947146, -86.50532032941677, 24.01409824083091,
                                  -1.231739572450155, 0.1208650973866179e-2, -0.5395239384953e-5};

static int64_t lcg(int64_t state)
{
    int64_t k = state / 127773;
    state = 16807 * (state - k * 127773) - 2836 * k;
    return state < 0 ? state + MODULUS : state;
}

static double uniform(int which, int64_t *ints)
{
    const double top = (double)(float)(1.0 - 1.2e-7);
    int64_t state = ints[which];
    if (state <= 0 || ints[2] == 0) {
        state = (-state < 1) ? 1 : -state;
        for (int step = 39; step >= 0; step--) {
            state = lcg(state);
            if (step < 32)
                ints[3 + step] = state;
        }
        ints[2] = ints[3];
    }
    state = lcg(state);
    ints[which] = state;
    int64_t slot = ints[2] >> 26;
    ints[2] = ints[3 + slot];
    ints[3 + slot] = state;
    double value = F32((double)ints[2] * (1.0 / (double)MODULUS));
    return value > top ? top : value;
}

static double gauss(int which, int64_t *ints, double *floats)
{
    double v1, v2, rsq;
    if (floats[0] != 0.0) {
        floats[0] = 0.0;
        return floats[1];
    }
    for (;;) {
        v1 = F32(2.0 * uniform(which, ints) - 1.0);
        v2 = F32(2.0 * uniform(which, ints) - 1.0);
        rsq = F32(F32(v1 * v1) + F32(v2 * v2));
        if (rsq < 1.0 && rsq != 0.0)
            break;
    }
    double factor = F32(sqrt(-2.0 * log(rsq) / rsq));
    floats[0] = 1.0;
    floats[1] = F32(v1 * factor);
    return F32(v2 * factor);
}

static double log_gamma(double x)
{
    double shifted = x + 5.5;
    shifted -= (x + 0.5) * log(shifted);
    double series = 1.000000000190015, term = x;
    for (int i = 0; i < 6; i++) {
        term += 1.0;
        series += LANCZOS[i] / term;
    }
    return F32(-shifted + log(2.5066282746310005 * series / x));
}

/* log_gamma of whole trials + 1, remembered within one call: the rejection method asks for the
 * same few values again and again (the same function of the same argument: the same bits). */
#define MEMO_SIZE 65536
typedef struct {
    double value[MEMO_SIZE];
    unsigned char known[MEMO_SIZE];
} Memo;

static double trial_log_gamma(double trial, Memo *memo)
{
    if (memo == NULL || !(trial < MEMO_SIZE))
        return log_gamma(F32(trial + 1.0));
    int slot = (int)trial;
    if (!memo->known[slot]) {
        memo->value[slot] = log_gamma(F32(trial + 1.0));
        memo->known[slot] = 1;
    }
    return memo->value[slot];
}

static double rejection(double mean, int64_t *ints, double *floats, Memo *memo)
{
    if (mean != floats[2]) {
        floats[2] = mean;
        floats[4] = F32(sqrt(2.0 * mean));
        floats[5] = F32(log(mean));
        floats[3] = F32(F32(mean * floats[5]) - log_gamma(F32(mean + 1.0)));
    }
    double sq = floats[4], log_mean = floats[5], g = floats[3];
    for (;;) {
        double lorentz, trial;
        for (;;) {
            lorentz = F32(tan(M_PI * uniform(0, ints)));
            trial = F32(F32(sq * lorentz) + mean);
            if (!(trial < 0.0))
                break;
        }
        trial = floor(trial);
        double exponent = F32(F32(F32(trial * log_mean) - trial_log_gamma(trial, memo)) - g);
        double ratio = F32(0.9 * (1.0 + F32(lorentz * lorentz)) * exp(exponent));
        if (!(uniform(0, ints) > ratio))
            return trial;
    }
}

static double poisson(double mean, int64_t *ints, double *floats, Memo *memo)
{
    if (mean > 1.0e6) {
        double root = sqrt(mean);
        return F32(mean + root * gauss(0, ints, floats));
    }
    if (!(mean < 12.0))
        return rejection(mean, ints, floats, memo);
    if (mean != floats[2]) {
        floats[2] = mean;
        floats[3] = F32(exp(-mean));
    }
    double g = floats[3], product = uniform(0, ints), count = 0.0;
    while (product > g) {
        product = F32(product * uniform(0, ints));
        count += 1.0;
    }
    return count;
}

static double run(const float *photons, float *counts, Py_ssize_t size, double flicker,
                  double calibration, int64_t *ints, double *floats, double total)
{
    Memo *memo = calloc(1, sizeof(Memo)); /* NULL: every value computed */
    for (Py_ssize_t i = 0; i < size; i++) {
        double mean = (double)photons[i];
        if (flicker > 0.0)
            mean *= 1.0 + flicker * gauss(0, ints, floats);
        if (calibration > 0.0)
            mean *= 1.0 + calibration * gauss(1, ints, floats);
        counts[i] = (float)poisson(F32(mean), ints, floats, memo);
        total += (double)counts[i];
    }
    free(memo);
    return total;
}

static PyObject *noise_loop(PyObject *self, PyObject *args)
{
    Py_buffer photons, counts, ints, floats;
    double flicker, calibration, total = 0.0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*ddw*w*|d", &photons, &counts, &flicker, &calibration, &ints, &floats,
                          &total))
        return NULL;
    Py_ssize_t size = photons.len / (Py_ssize_t)sizeof(float);
    int ok = counts.len == photons.len && ints.len == 35 * (Py_ssize_t)sizeof(int64_t)
             && floats.len == 6 * (Py_ssize_t)sizeof(double);
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        total = run((const float *)photons.buf, (float *)counts.buf, size, flicker, calibration,
                    (int64_t *)ints.buf, (double *)floats.buf, total);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&photons);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&ints);
    PyBuffer_Release(&floats);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "noise_loop: buffer sizes do not match");
        return NULL;
    }
    return PyFloat_FromDouble(total);
}

/* noisify's running sums: a double total plus float values, one at a time in order (not vectorised:
 * without -ffast-math the compiler keeps the order, and so the rounding, of the additions). */
static PyObject *running_sum(PyObject *self, PyObject *args)
{
    Py_buffer values;
    double total = 0.0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*|d", &values, &total))
        return NULL;
    if (values.len % (Py_ssize_t)sizeof(float) != 0) {
        PyBuffer_Release(&values);
        PyErr_SetString(PyExc_ValueError, "running_sum: not a buffer of floats");
        return NULL;
    }
    const float *value = (const float *)values.buf;
    Py_ssize_t count = values.len / (Py_ssize_t)sizeof(float);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++)
        total += (double)value[i];
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&values);
    return PyFloat_FromDouble(total);
}

static PyMethodDef methods[] = {
    {"noise_loop", noise_loop, METH_VARARGS,
     "noise_loop(photons f4, counts f4 (out), flicker, calibration, ints i8[35], floats f8[6][, total]) -> "
     "total (default 0.0) plus the counts, added one at a time in order; resumes from the state in ints, floats"},
    {"running_sum", running_sum, METH_VARARGS,
     "running_sum(values f4[, total]) -> total (default 0.0) plus the values, added one at a time in order"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_noiseloop", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__noiseloop(void)
{
    return PyModule_Create(&module);
}
