// Hand-written SVG charts (no JavaScript, no external assets): the roofline on log-log axes
// (arithmetic intensity against achieved TFLOP/s, with the memory and compute roofs and the ridge),
// and a log-log line chart (tokens/s against batch). report_charts() draws a report's charts.
#pragma once

#include <string>
#include <vector>

#include "analysis/report.h"

namespace ridgeline {

// Text with &, <, > and " escaped, for XML (and HTML) content and attribute values.
std::string xml_escape(const std::string& s);

// A logarithmic axis over [lo, hi] drawn from pixel px_lo to pixel px_hi (for a vertical axis
// px_hi < px_lo: SVG's y grows downwards).
struct LogAxis {
  double lo = 1, hi = 10;
  double px_lo = 0, px_hi = 1;
  double to_px(double v) const;  // v > 0
  double from_px(double px) const;
};

// The axis that holds [min, max], its ends rounded outwards to 1, 2 or 5 x 10^k, and widened to the
// nearer power of ten when none lies inside (ticks are labelled at the decades). Needs 0 < min <= max.
LogAxis log_axis(double min, double max, double px_lo, double px_hi);

// The plot rectangle in pixels and the two axes that map data into it.
struct PlotArea {
  double left = 0, top = 0, right = 0, bottom = 0;
  LogAxis x, y;
  bool contains(double px, double py) const;
};

enum class Marker { circle, square, triangle, diamond };

struct ChartPoint {
  double x = 0, y = 0;  // data units; drawn only when both are finite and > 0
  std::string label;    // text beside the point ("B=16"); may be empty
  std::string tooltip;  // the point's <title>
  std::string color;    // CSS colour
  Marker marker = Marker::circle;
};

struct LegendEntry {
  std::string label;
  std::string color;
  Marker marker = Marker::circle;
  std::string dash;   // line entries: stroke-dasharray ("" for solid)
  bool line = false;  // a line sample instead of a marker alone
};

// Another pair of roofs on the same chart (a second report measured against other ceilings): drawn
// dashed in `color`, as <line class="roof-memory-overlay"> and <line class="roof-compute-overlay">.
struct RoofOverlay {
  Ceilings ceilings;
  std::string color;
};

struct RooflineChart {
  std::string title;
  std::string subtitle;            // a smaller second line (model and device)
  Ceilings ceilings;               // the roofs (peak_GBps, peak_tflops)
  std::vector<ChartPoint> points;  // x: FLOP/B, y: achieved TFLOP/s
  std::vector<LegendEntry> legend;
  std::vector<RoofOverlay> overlays;  // further roofs; the axes hold their ridges and peaks too
};

struct LineSeries {
  std::string label, color, dash;
  Marker marker = Marker::circle;
  std::vector<ChartPoint> points;  // joined in the order given
};

struct LineChart {
  std::string title, subtitle, x_title, y_title;
  std::vector<LineSeries> series;
  std::vector<LegendEntry> legend;  // when empty, one entry per series (its label, colour, dash, marker)
};

// The plot area and axes: x holds the ridge (and a decade below it, so the memory roof shows) and
// every drawable point; y holds the compute roof and every drawable point.
PlotArea roofline_area(const RooflineChart& c);
// Elements a reader (or a test) can find: the memory roof is <line class="roof-memory">, the compute
// roof <line class="roof-compute">, the ridge <line class="ridge">, every point
// <g class="point" transform="translate(x,y)">. Points that cannot go on log axes are named in a note.
std::string roofline_svg(const RooflineChart& c);

PlotArea line_chart_area(const LineChart& c);
std::string line_chart_svg(const LineChart& c);

// A chart of a report, ready to embed or to write as `<stem>-<slug>.svg`.
struct ReportChart {
  std::string slug;  // "roofline" (per context: "roofline-ctx1024", ...), "kinds", "throughput"
  std::string title;
  std::string caption;  // one sentence on what is drawn
  std::string svg;
};

// The roofline of every run's step, one chart per context (colour per weight/KV format, labelled B=...),
// the per-kind roofline of the first format's smallest- and largest-batch runs at its largest context,
// and tokens/s against batch per (format, context). Charts with nothing to draw are left out.
std::vector<ReportChart> report_charts(const Report& r);

// Several reports overlaid, one colour and marker per report (labels[i] names reports[i] in the
// legends): the roofline of every run's step, one chart per context, with each report's roofs where
// they differ from the first's; and tokens/s against batch, one line per (report, format, context).
std::vector<ReportChart> report_set_charts(const std::vector<const Report*>& reports,
                                           const std::vector<std::string>& labels);

}  // namespace ridgeline
