/*
** The elementwise kernels against the scalar specification (vec_exact.h).
*/
#include <math.h>
#include <string.h>
#include "vec_exact.h"
#include "q8.h"

static float uniform(uint64_t *seed, float lo, float hi)
{
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((double)(*seed >> 11) / 9007199254740992.0);
}

/* v within tol of |w|, or 1e-30 for results near 0; NaN where w is NaN. */
static int near(float v, float w, float tol)
{
    return isnan(w) ? isnan(v) : fabsf(v - w) <= tol * fabsf(w) + 1e-30f;
}

/* Each of got's n values is want's, bit for bit: one comparison. */
static void same(exact_stats *st, const vec_kernels *k, const float *got, const float *want, int n, const char *what,
                 int len)
{
    int bad = -1;
    for (int i = 0; i < n && bad < 0; i++)
        if (memcmp(&got[i], &want[i], sizeof *got))
            bad = i;
    exact_check(st, k->name, bad < 0, "%s (%d): [%d] is %.9g, the plain rule gives %.9g", what, len, bad,
                bad < 0 ? 0 : got[bad], bad < 0 ? 0 : want[bad]);
}

void vecx_check_scalar(const vec_kernels *k, exact_stats *st)
{
    enum { MAX_N = 1536 };
    float x[MAX_N], w[MAX_N], a[MAX_N], b[MAX_N];
    uint64_t seed = 3;
    for (int len = 1; len <= 71; len++) {
        int n = len <= 70 ? len : MAX_N;
        for (int i = 0; i < n; i++) {
            float u = uniform(&seed, 0, 1);
            x[i] = (u * 180 - 90) / (i % 3 ? 1 : 16);
            w[i] = u * 4 - 2;
        }
        x[n / 2] = 0;
        vec_scalar.rmsnorm(a, x, w, n, 1e-5f);
        k->rmsnorm(b, x, w, n, 1e-5f);
        for (int i = 0; i < n; i++)
            exact_check(st, k->name, near(b[i], a[i], 2e-6f), "rmsnorm, n %d, [%d]: %.9g, expected %.9g", n, i,
                        b[i], a[i]);
        x[n / 3] = NAN;
        vec_scalar.swiglu(a, x, w, (size_t)n);
        k->swiglu(b, x, w, (size_t)n);
        for (int i = 0; i < n; i++)
            exact_check(st, k->name, near(b[i], a[i], 4e-7f), "swiglu, n %d, [%d]: %.9g, expected %.9g", n, i,
                        b[i], a[i]);
        /* GELU's weight e^-z moves by |z| times the relative error of z,
        ** which FMA or not changes by an ulp; and against the tanh form in
        ** double, g/2 (1 + tanh u) written g / (1 + e^-2u) (the same, but
        ** without the sum's cancellation far below 0) */
        vec_scalar.geglu(a, x, w, (size_t)n);
        k->geglu(b, x, w, (size_t)n);
        for (int i = 0; i < n; i++) {
            double g = x[i], z = VEC_GELU_C * g * (1 + VEC_GELU_K * g * g);
            double u = sqrt(2 / M_PI) * (g + 0.044715 * g * g * g), t = g / (1 + exp(-2 * u)) * w[i];
            exact_check(st, k->name, near(b[i], a[i], 4e-7f * (1 + (float)fabs(z))),
                        "geglu, n %d, [%d]: %.9g, expected %.9g", n, i, b[i], a[i]);
            exact_check(st, k->name, isnan(x[i]) ? isnan(b[i]) : fabs(b[i] - t) <= 2e-6 * (1 + fabs(z)) * fabs(t) + 1e-30,
                        "geglu, n %d, [%d]: %.9g, GELU's tanh form gives %.9g", n, i, b[i], t);
        }
        /* softmax terms below the largest value, at a temperature of 0.8:
        ** exponents from 0 to -225, and -inf */
        float top = -INFINITY;
        for (int i = 0; i < n; i++)
            top = x[i] > top ? x[i] : top;
        x[n - 1] = n > 2 ? -INFINITY : x[n - 1];
        vec_scalar.exp_scaled(a, x, (size_t)n, top, 1.25f);
        k->exp_scaled(b, x, (size_t)n, top, 1.25f);
        for (int i = 0; i < n; i++) {
            double z = ((double)x[i] - top) * 1.25, want = z >= VEC_EXP_FLOOR ? exp(z) : 0;
            exact_check(st, k->name, near(b[i], a[i], 4e-7f) && (b[i] == 0) == (want == 0),
                        "exp_scaled, n %d, [%d] (%.9g): %.9g, expected %.9g", n, i, x[i], b[i], a[i]);
        }
    }
}

void vecx_check_plain(const vec_kernels *k, exact_stats *st)
{
    enum { MAX = 1536 };
    static float x[MAX], y[MAX], w[MAX], dx[MAX], a[MAX], b[MAX], cs[MAX];
    uint64_t seed = 7;
    for (int half = 1; half <= 40; half++) {
        for (int i = 0; i < half; i++) {
            double angle = 1234 * pow(10000.0, -2.0 * i / (2 * half));
            cs[i] = (float)cos(angle);
            cs[half + i] = (float)sin(angle);
        }
        for (int adjacent = 0; adjacent <= 1; adjacent++) {
            for (int i = 0; i < 2 * half; i++)
                x[i] = y[i] = uniform(&seed, -8, 8);
            vec_scalar.rope(x, cs, half, adjacent);
            k->rope(y, cs, half, adjacent);
            same(st, k, y, x, 2 * half, adjacent ? "rope, adjacent pairs" : "rope, halves", half);
        }
    }
    for (int len = 1; len <= 71; len++) {
        int n = len <= 70 ? len : MAX;
        for (int i = 0; i < n; i++) {
            x[i] = y[i] = uniform(&seed, -30, 30);
            dx[i] = uniform(&seed, -3, 3);
            w[i] = uniform(&seed, -2, 2);
        }
        memcpy(b, dx, sizeof(float) * (size_t)n);
        k->add_rmsnorm(b, y, b, w, n, 1e-5f);   /* out over dx, as the residual pass does */
        vec_scalar.add(x, dx, (size_t)n);
        same(st, k, y, x, n, "add_rmsnorm's sum", n);
        k->rmsnorm(a, x, w, n, 1e-5f);
        same(st, k, b, a, n, "add_rmsnorm's norm", n);
        memcpy(y, x, sizeof(float) * (size_t)n);
        vec_scalar.add(x, w, (size_t)n);
        k->add(y, w, (size_t)n);
        same(st, k, y, x, n, "add", n);
    }
    for (int i = 0; i < MAX; i++) {
        x[i] = uniform(&seed, -12, 12);
        w[i] = uniform(&seed, -2, 2);
    }
    k->swiglu(a, x, w, MAX);
    for (int c = 0; c < MAX; c += Q8_BLOCK)   /* as the gate and up product computes it */
        k->swiglu(b + c, x + c, w + c, Q8_BLOCK);
    same(st, k, b, a, MAX, "swiglu in runs of a block", MAX);
    k->geglu(a, x, w, MAX);
    for (int c = 0; c < MAX; c += Q8_BLOCK)
        k->geglu(b + c, x + c, w + c, Q8_BLOCK);
    same(st, k, b, a, MAX, "geglu in runs of a block", MAX);
}
