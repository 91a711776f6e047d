/* SPDX-License-Identifier: Apache-2.0 */
/*
 * emsguard-bench reporting: statistics over rounds, the text summary with the
 * PASS/FAIL targets, the raw CSV and a self-contained SVG chart.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "report.h"

static const char *const suite_names[SUITE_COUNT] = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"
};
static const char *const suite_short[SUITE_COUNT] = { "ECDSA P-256", "RSA-2048" };
static const char *const mode_names[MODE_COUNT] = { "full", "resume-session-id", "resume-ticket" };
static const char *const variant_names[VAR_COUNT] = {
    "stock", "api-policy", "guard-audit", "guard-enforce", "stock-child", "preload", "all"
};
/* Chart colours (index = variant; the baselines are not drawn). */
static const char *const variant_colours[VAR_COUNT] = {
    "#999999", "#1f77b4", "#2ca02c", "#ff7f0e", "#999999", "#9467bd", "#d62728"
};
/* Bars of a chart group, in this order. */
static const int drawn[] = { VAR_POLICY, VAR_PRELOAD, VAR_AUDIT, VAR_ENFORCE, VAR_ALL };
#define DRAWN_COUNT (int)(sizeof(drawn) / sizeof(drawn[0]))

const char *bench_suite_name(int suite)
{
    return suite >= 0 && suite < SUITE_COUNT ? suite_names[suite] : "?";
}

const char *bench_suite_short(int suite)
{
    return suite >= 0 && suite < SUITE_COUNT ? suite_short[suite] : "?";
}

const char *bench_mode_name(int mode)
{
    return mode >= 0 && mode < MODE_COUNT ? mode_names[mode] : "?";
}

const char *bench_variant_name(int variant)
{
    return variant >= 0 && variant < VAR_COUNT ? variant_names[variant] : "?";
}

int bench_variant_of_name(const char *name)
{
    int v;

    for (v = 0; v < VAR_COUNT; v++)
        if (strcmp(name, variant_names[v]) == 0)
            return v;
    return -1;
}

int bench_baseline(int variant)
{
    /* The child variants against a stock child; the stock child against stock. */
    return variant == VAR_PRELOAD || variant == VAR_ALL ? VAR_CHILD_STOCK : VAR_STOCK;
}

int bench_is_baseline(int variant)
{
    return variant == VAR_STOCK || variant == VAR_CHILD_STOCK;
}

double bench_target(int mode)
{
    /* A full handshake is dominated by public-key work, so it gets the tighter bound. */
    return mode == MODE_FULL ? 0.99 : 0.98;
}

double bench_rate(const struct bench_cell *c)
{
    return c->seconds > 0 ? (double)c->handshakes / c->seconds : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* min/median/max of |n| values (the even case averages the middle two). */
void bench_stat_of(double *v, int n, struct bench_stat *out)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    out->min = v[0];
    out->max = v[n - 1];
    out->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_rate_stat(const struct bench_results *r, int suite, int mode,
    int variant, struct bench_stat *out)
{
    double v[BENCH_MAX_ROUNDS];
    int i;

    for (i = 0; i < r->rounds; i++)
        v[i] = bench_rate(&r->cell[suite][mode][variant][i]);
    bench_stat_of(v, r->rounds, out);
}

void bench_ratio_stat(const struct bench_results *r, int suite, int mode,
    int variant, struct bench_stat *out)
{
    double v[BENCH_MAX_ROUNDS];
    int i;

    /* Per round: both rates come from the same interleaved stretch of time. */
    for (i = 0; i < r->rounds; i++) {
        double base = r->cell[suite][mode][bench_baseline(variant)][i].best;

        v[i] = base > 0 ? r->cell[suite][mode][variant][i].best / base : 0;
    }
    bench_stat_of(v, r->rounds, out);
}

/* ---- text summary --------------------------------------------------------- */

static int measured(const struct bench_results *r, int v)
{
    return r->cell[0][0][v][0].handshakes > 0;
}

int bench_print_summary(FILE *out, const struct bench_results *r, int gating)
{
    int s, m, v, failed = 0;

    fprintf(out, "\n== %d thread%s: handshakes/s (%s clock) and ratio to the baseline, "
                 "min / median / max over %d rounds\n",
        r->threads, r->threads == 1 ? "" : "s", r->clock_name, r->rounds);
    fprintf(out, "   hs/s: mean rate of each round.  ratio, per round: the variant's fastest "
                 "slice / its baseline's fastest slice\n");
    fprintf(out, "   (baseline: stock for the in-process variants; stock-child for preload and all;"
                 " stock-child's own ratio is to stock)\n");
    for (s = 0; s < SUITE_COUNT; s++) {
        fprintf(out, "\n%s, %d thread%s\n", suite_names[s], r->threads, r->threads == 1 ? "" : "s");
        fprintf(out, "  %-18s %-14s %8s %8s %8s   %6s %6s %6s  %-6s %s\n", "mode", "variant",
            "hs/s min", "median", "max", "ratio", "median", "max", "target", "result");
        for (m = 0; m < MODE_COUNT; m++)
            for (v = 0; v < VAR_COUNT; v++) {
                struct bench_stat rate, ratio;
                int pass;

                if (!measured(r, v))
                    continue;
                bench_rate_stat(r, s, m, v, &rate);
                bench_ratio_stat(r, s, m, v, &ratio);
                fprintf(out, "  %-18s %-14s %8.0f %8.0f %8.0f   %6.3f %6.3f %6.3f", mode_names[m],
                    variant_names[v], rate.min, rate.median, rate.max, ratio.min, ratio.median,
                    ratio.max);
                if (bench_is_baseline(v)) {
                    fputs(v == VAR_STOCK ? "\n" : "  (baseline of preload, all)\n", out);
                    continue;
                }
                if (r->calibrate && v >= VAR_CHILD_STOCK) {
                    fputs("  (stock child: calibration)\n", out);
                    continue;
                }
                pass = ratio.median >= bench_target(m);
                if (gating && !pass)
                    failed++;
                fprintf(out, "  >=%.2f %s%s\n", bench_target(m), pass ? "PASS" : "FAIL",
                    gating ? "" : " (info)");
            }
    }
    if (gating)
        fprintf(out, "\n%d thread targets: %d of the gating ratios below target\n", r->threads,
            failed);
    return failed;
}

/* ---- CSV ------------------------------------------------------------------ */

static void csv_rows(FILE *f, const struct bench_results *r)
{
    int s, m, v, i;

    for (s = 0; s < SUITE_COUNT; s++)
        for (m = 0; m < MODE_COUNT; m++)
            for (v = 0; v < VAR_COUNT; v++)
                for (i = 0; i < r->rounds && measured(r, v); i++) {
                    const struct bench_cell *c = &r->cell[s][m][v][i];
                    double base = r->cell[s][m][bench_baseline(v)][i].best;

                    fprintf(f, "%s,%s,%s,%s,%d,%d,%ld,%.6f,%s,%.1f,%.1f,%.4f\n", suite_names[s],
                        mode_names[m], variant_names[v], variant_names[bench_baseline(v)],
                        r->threads, i + 1, c->handshakes, c->seconds, r->clock_name,
                        bench_rate(c), c->best, base > 0 ? c->best / base : 0);
                }
}

int bench_write_csv(const char *path, const struct bench_results *single,
    const struct bench_results *threaded)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return 0;
    fprintf(f, "suite,mode,variant,baseline,threads,round,handshakes,seconds,clock,"
               "handshakes_per_s,best_slice_per_s,ratio_to_baseline\n");
    csv_rows(f, single);
    if (threaded != NULL)
        csv_rows(f, threaded);
    return fclose(f) == 0;
}

/* ---- SVG ------------------------------------------------------------------ */

/* Chart geometry, in SVG user units: a header, one panel per run, a legend. */
#define SVG_W 1000.0
#define HEAD_H 56.0
#define PANEL_H 330.0
#define LEGEND_H 34.0
#define PLOT_L 80.0
#define PLOT_R 20.0
#define PLOT_T 34.0 /* inside a panel: its title */
#define PLOT_B 52.0 /* inside a panel: group labels */

struct axis {
    double lo, hi; /* ratio range shown */
    double top; /* y of the panel */
};

static double y_of(const struct axis *a, double ratio)
{
    double h = PANEL_H - PLOT_T - PLOT_B;

    return a->top + PLOT_T + h * (a->hi - ratio) / (a->hi - a->lo);
}

static int drawable(const struct bench_results *r, int v)
{
    return measured(r, v) && measured(r, bench_baseline(v));
}

/* A range that shows every whisker, 1.0 and the targets, with a margin. */
static struct axis choose_axis(const struct bench_results *r, double top)
{
    struct axis a = { 0.97, 1.02, top };
    int s, m, k;

    for (s = 0; s < SUITE_COUNT; s++)
        for (m = 0; m < MODE_COUNT; m++)
            for (k = 0; k < DRAWN_COUNT; k++) {
                struct bench_stat st;

                if (!drawable(r, drawn[k]))
                    continue;
                bench_ratio_stat(r, s, m, drawn[k], &st);
                a.lo = fmin(a.lo, st.min);
                a.hi = fmax(a.hi, st.max);
            }
    a.lo = floor((a.lo - 0.005) * 100) / 100;
    a.hi = ceil((a.hi + 0.005) * 100) / 100;
    return a;
}

static double tick_step(const struct axis *a)
{
    static const double steps[] = { 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5 };
    size_t i;

    for (i = 0; i < sizeof(steps) / sizeof(steps[0]) - 1; i++)
        if ((a->hi - a->lo) / steps[i] <= 10)
            break;
    return steps[i];
}

static void svg_axes(FILE *f, const struct axis *a, const struct bench_results *r)
{
    double step = tick_step(a), t, bottom = a->top + PANEL_H - PLOT_B;

    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"14\" font-weight=\"bold\">%d thread%s "
               "(%s time)%s</text>\n", PLOT_L, a->top + 20, r->threads,
        r->threads == 1 ? "" : "s, sharing each SSL_CTX", r->clock_name,
        r->threads == 1 ? " -- gating" : " -- informational");
    for (t = ceil(a->lo / step - 1e-9) * step; t <= a->hi + 1e-9; t += step) {
        double y = y_of(a, t);

        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n",
            PLOT_L, y, SVG_W - PLOT_R, y);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.3f</text>\n",
            PLOT_L - 6, y + 4, t);
    }
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"1.5\"/>\n",
        PLOT_L, y_of(a, 1.0), SVG_W - PLOT_R, y_of(a, 1.0));
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#000\"/>\n", PLOT_L,
        a->top + PLOT_T, PLOT_L, bottom);
    fprintf(f, "<text transform=\"translate(18,%.0f) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">"
               "ratio to stock</text>\n", (a->top + PLOT_T + bottom) / 2);
}

static void svg_legend(FILE *f, double y)
{
    double x = PLOT_L;
    int k;

    for (k = 0; k < DRAWN_COUNT; k++, x += 140) {
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x, y,
            variant_colours[drawn[k]]);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">%s</text>\n", x + 16, y + 10,
            variant_names[drawn[k]]);
    }
}

/* One bar from 1.0 to the median, a whisker over min..max. */
static void svg_bar(FILE *f, const struct axis *a, double x, double w, int v,
    const struct bench_stat *st)
{
    double y1 = y_of(a, 1.0), ym = y_of(a, st->median), cx = x + w / 2;

    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
               "<title>%s: median %.4f (min %.4f, max %.4f)</title></rect>\n",
        x, fmin(y1, ym), w, fmax(fabs(y1 - ym), 1.0), variant_colours[v], variant_names[v],
        st->median, st->min, st->max);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#222\"/>\n", cx,
        y_of(a, st->min), cx, y_of(a, st->max));
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#222\"/>\n",
        cx - w / 4, y_of(a, st->min), cx + w / 4, y_of(a, st->min));
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#222\"/>\n",
        cx - w / 4, y_of(a, st->max), cx + w / 4, y_of(a, st->max));
}

static void svg_group(FILE *f, const struct axis *a, const struct bench_results *r,
    int s, int m, double gx, double gw)
{
    double bw = gw / (DRAWN_COUNT + 1), x = gx + bw / 2;
    double yt = y_of(a, bench_target(m)), bottom = a->top + PANEL_H - PLOT_B;
    int k;

    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c00\" "
               "stroke-dasharray=\"5,3\"/>\n", gx + 4, yt, gx + gw - 4, yt);
    for (k = 0; k < DRAWN_COUNT; k++, x += bw) {
        struct bench_stat st;

        if (!drawable(r, drawn[k]))
            continue;
        bench_ratio_stat(r, s, m, drawn[k], &st);
        svg_bar(f, a, x, bw * 0.8, drawn[k], &st);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n",
        gx + gw / 2, bottom + 18, mode_names[m]);
    fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\" fill=\"#555\">%s</text>\n",
        gx + gw / 2, bottom + 34, suite_short[s]);
}

static void svg_panel(FILE *f, const struct bench_results *r, double top)
{
    struct axis a = choose_axis(r, top);
    double gw = (SVG_W - PLOT_L - PLOT_R) / (SUITE_COUNT * MODE_COUNT);
    int s, m;

    svg_axes(f, &a, r);
    for (s = 0; s < SUITE_COUNT; s++)
        for (m = 0; m < MODE_COUNT; m++)
            svg_group(f, &a, r, s, m, PLOT_L + gw * (s * MODE_COUNT + m), gw);
}

int bench_write_svg(const char *path, const struct bench_results *single,
    const struct bench_results *threaded)
{
    FILE *f = fopen(path, "w");
    int panels = threaded != NULL ? 2 : 1;
    double h = HEAD_H + panels * PANEL_H + LEGEND_H;

    if (f == NULL)
        return 0;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
        SVG_W, h, SVG_W, h);
    fprintf(f, "<text x=\"%.0f\" y=\"26\" font-size=\"18\" font-weight=\"bold\">"
               "emsguard handshake overhead: rate relative to stock OpenSSL%s</text>\n", PLOT_L,
        single->calibrate ? " (CALIBRATION: preload and all ran stock)" : "");
    fprintf(f, "<text x=\"%.0f\" y=\"46\" font-size=\"12\" fill=\"#555\">bar: median of %d "
               "per-round ratios (fastest slices); whisker: min-max; red dashed: target; "
               "preload, all: vs a stock child</text>\n", PLOT_L, single->rounds);
    svg_panel(f, single, HEAD_H);
    if (threaded != NULL)
        svg_panel(f, threaded, HEAD_H + PANEL_H);
    svg_legend(f, h - LEGEND_H + 8);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0;
}
