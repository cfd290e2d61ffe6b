// SVG charts written by hand: a frame of log axes, then roofs, lines and markers.
// Coordinates are printed with one decimal; every value placed is checked finite first, so that no
// "nan" or "inf" can reach the file.
#include "analysis/svg_roofline.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <numbers>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/formats.h"

#include "analysis/report_view.h"

namespace ridgeline {
namespace {

// Layout in pixels: the legend sits in a column right of the plot.
constexpr double kWidth = 800;
constexpr double kLeft = 74, kTop = 50, kRight = 570, kMinBottom = 400;
constexpr double kLegendRow = 18;
// The axes end this far inside the plot rectangle, so that a point on a decade at the end of an axis
// is not cut in half by the frame.
constexpr double kPad = 12;

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
constexpr size_t kPaletteSize = std::size(kPalette);
const char* const kDashes[] = {"", "7 4", "2 3", "9 3 2 3"};
const Marker kMarkers[] = {Marker::circle, Marker::square, Marker::triangle, Marker::diamond};

bool drawable(double x, double y) {
  return std::isfinite(x) && std::isfinite(y) && x > 0 && y > 0;
}

// One decimal, and a loud failure instead of a silent "nan" in the file.
std::string px(double v) {
  if (!std::isfinite(v)) throw std::runtime_error("svg: a non-finite coordinate reached the chart writer");
  return fmt::format("{:.1f}", v);
}

int decade_of(double v) {
  // The epsilon keeps exact powers of ten (whose log10 may round to k - 1e-16) in their own decade.
  return static_cast<int>(std::floor(std::log10(v) + 1e-9));
}

// m * 10^k: plain between 0.001 and 100000, "2e-5" style outside.
std::string tick_label(int m, int k) {
  if (k >= -3 && k <= 5) return fmt::format("{:.{}f}", m * std::pow(10.0, k), std::max(0, -k));
  return fmt::format("{}e{}", m, k);
}

bool within(double v, const LogAxis& axis) {
  return v >= axis.lo * (1 - 1e-9) && v <= axis.hi * (1 + 1e-9);
}

std::string marker_svg(Marker m, const std::string& color) {
  std::string style = fmt::format("fill=\"{}\" stroke=\"#222\" stroke-width=\"0.7\"", xml_escape(color));
  switch (m) {
    case Marker::circle:
      return fmt::format("<circle r=\"4.2\" {}/>", style);
    case Marker::square:
      return fmt::format("<rect x=\"-3.8\" y=\"-3.8\" width=\"7.6\" height=\"7.6\" {}/>", style);
    case Marker::triangle:
      return fmt::format("<polygon points=\"0,-5 4.6,3.6 -4.6,3.6\" {}/>", style);
    case Marker::diamond:
      return fmt::format("<polygon points=\"0,-5.2 5.2,0 0,5.2 -5.2,0\" {}/>", style);
  }
  return {};
}

double plot_bottom(size_t legend_rows) {
  return std::max(kMinBottom, kTop + kLegendRow * double(legend_rows) + 10);
}

PlotArea make_area(double xmin, double xmax, double ymin, double ymax, size_t legend_rows) {
  PlotArea a;
  a.left = kLeft;
  a.top = kTop;
  a.right = kRight;
  a.bottom = plot_bottom(legend_rows);
  a.x = log_axis(xmin, xmax, a.left + kPad, a.right - kPad);
  a.y = log_axis(ymin, ymax, a.bottom - kPad, a.top + kPad);
  return a;
}

// The SVG element, the title, the plot rectangle, decade grid lines with their labels, axis titles.
void open_frame(std::string& o, const PlotArea& a, double height, const std::string& title,
                const std::string& subtitle, const std::string& x_title, const std::string& y_title) {
  fmt::format_to(
      std::back_inserter(o),
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\" role=\"img\">\n"
      "<title>{2}</title>\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n"
      "<text x=\"{3}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{2}</text>\n"
      "<text x=\"{3}\" y=\"37\" fill=\"#555\">{7}</text>\n"
      "<rect class=\"plot-area\" x=\"{3}\" y=\"{4}\" width=\"{5}\" height=\"{6}\" fill=\"#fcfcfc\" "
      "stroke=\"#888\"/>\n",
      px(kWidth), px(height), xml_escape(title), px(a.left), px(a.top), px(a.right - a.left),
      px(a.bottom - a.top), xml_escape(subtitle));
  // Lines at 1..9 x 10^k; labels at the decades, and at 2 and 5 x 10^k when the axis spans less than
  // two decades (so that a short axis still has more than one number on it).
  auto grid = [&](const LogAxis& axis, bool vertical) {
    int k0 = decade_of(axis.lo), k1 = decade_of(axis.hi);
    bool minor = k1 - k0 <= 6;  // minor lines would crowd a long axis
    bool label_minor = std::log10(axis.hi / axis.lo) < 2;
    for (int k = k0; k <= k1; ++k) {
      for (int m = 1; m <= 9; ++m) {
        double v = m * std::pow(10.0, k);
        if ((m > 1 && !minor) || !within(v, axis)) continue;
        double p = axis.to_px(v);
        const char* stroke = m == 1 ? "#d0d0d0" : "#eeeeee";
        if (vertical)
          fmt::format_to(std::back_inserter(o),
                         "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"{3}\"/>\n", px(p),
                         px(a.top), px(a.bottom), stroke);
        else
          fmt::format_to(std::back_inserter(o),
                         "<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\" stroke=\"{3}\"/>\n", px(p),
                         px(a.left), px(a.right), stroke);
        if (m != 1 && !(label_minor && (m == 2 || m == 5))) continue;
        if (vertical)
          fmt::format_to(std::back_inserter(o),
                         "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(p),
                         px(a.bottom + 16), tick_label(m, k));
        else
          fmt::format_to(std::back_inserter(o),
                         "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                         px(a.left - 6), px(p + 4), tick_label(m, k));
      }
    }
  };
  grid(a.x, true);
  grid(a.y, false);
  double mid_x = (a.left + a.right) / 2, mid_y = (a.top + a.bottom) / 2;
  fmt::format_to(std::back_inserter(o),
                 "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n"
                 "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 {} {})\">{}</text>\n",
                 px(mid_x), px(a.bottom + 36), xml_escape(x_title), px(18), px(mid_y), px(18), px(mid_y),
                 xml_escape(y_title));
}

struct Box {
  double x0, y0, x1, y1;
  bool overlaps(const Box& b) const { return x0 < b.x1 && b.x0 < x1 && y0 < b.y1 && b.y0 < y1; }
};

// Markers first, then labels placed around their point where they overlap no other label or marker
// (nor the boxes in `taken`: the roofs' own labels); a label that fits nowhere is still drawn, unless
// the same text already sits next to the point. Labels are only a reading aid: every point also
// carries a <title> tooltip.
void draw_points(std::string& o, const PlotArea& a, const std::vector<ChartPoint>& points,
                 std::vector<Box> taken = {}) {
  for (const auto& p : points) {
    double x = a.x.to_px(p.x), y = a.y.to_px(p.y);
    fmt::format_to(std::back_inserter(o),
                   "<g class=\"point\" transform=\"translate({},{})\"><title>{}</title>{}</g>\n", px(x),
                   px(y), xml_escape(p.tooltip.empty() ? p.label : p.tooltip), marker_svg(p.marker, p.color));
    taken.push_back({x - 5, y - 5, x + 5, y + 5});
  }
  struct Placed {
    Box box;
    std::string text;
    double x, y;  // the point it names
  };
  std::vector<Placed> labels;
  const Box frame{a.left, a.top, a.right, a.bottom};
  for (const auto& p : points) {
    if (p.label.empty()) continue;
    double x = a.x.to_px(p.x), y = a.y.to_px(p.y);
    // Points that coincide (and share a label) need it once.
    if (std::any_of(labels.begin(), labels.end(), [&](const Placed& l) {
          return l.text == p.label && std::abs(l.x - x) < 8 && std::abs(l.y - y) < 8;
        }))
      continue;
    double w = 5.6 * double(p.label.size());  // ~0.56 em per character at 10 px
    struct Spot {
      double dx, dy;
      const char* anchor;
    };
    const Spot spots[] = {{7, -6, "start"}, {7, 13, "start"},   {-7, -6, "end"},
                          {-7, 13, "end"},  {0, -10, "middle"}, {0, 18, "middle"}};
    auto box_at = [&](const Spot& s) {
      double tx = x + s.dx, ty = y + s.dy;
      double x0 = s.anchor[0] == 's' ? tx : s.anchor[0] == 'e' ? tx - w : tx - w / 2;
      return Box{x0, ty - 8, x0 + w, ty + 2};
    };
    const Spot* chosen = nullptr;
    for (const auto& s : spots) {
      Box b = box_at(s);
      bool inside = b.x0 >= frame.x0 && b.x1 <= frame.x1 && b.y0 >= frame.y0 && b.y1 <= frame.y1;
      bool clear =
          std::none_of(taken.begin(), taken.end(), [&](const Box& t) { return t.overlaps(b); }) &&
          std::none_of(labels.begin(), labels.end(), [&](const Placed& l) { return l.box.overlaps(b); });
      if (inside && clear) {
        chosen = &s;
        break;
      }
    }
    if (!chosen) {
      bool repeated = std::any_of(labels.begin(), labels.end(), [&](const Placed& l) {
        return l.text == p.label && l.box.overlaps(Box{x - 24, y - 24, x + 24, y + 24});
      });
      if (repeated) continue;
      chosen = &spots[0];
    }
    Box b = box_at(*chosen);
    labels.push_back({b, p.label, x, y});
    fmt::format_to(std::back_inserter(o),
                   "<text class=\"label\" x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"{}\">{}</text>\n",
                   px(x + chosen->dx), px(y + chosen->dy), chosen->anchor, xml_escape(p.label));
  }
}

void draw_legend(std::string& o, const PlotArea& a, const std::vector<LegendEntry>& legend) {
  double x = a.right + 18, y = a.top + 8;
  for (const auto& e : legend) {
    if (e.line)
      fmt::format_to(std::back_inserter(o),
                     "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"1.6\"{}/>\n",
                     px(x - 4), px(y), px(x + 22), px(y), xml_escape(e.color),
                     e.dash.empty() ? "" : fmt::format(" stroke-dasharray=\"{}\"", xml_escape(e.dash)));
    fmt::format_to(std::back_inserter(o), "<g transform=\"translate({},{})\">{}</g>\n", px(x + 9), px(y),
                   marker_svg(e.marker, e.color));
    fmt::format_to(std::back_inserter(o), "<text x=\"{}\" y=\"{}\">{}</text>\n", px(x + 30), px(y + 4),
                   xml_escape(e.label));
    y += kLegendRow;
  }
}

// Points that a log axis cannot hold are named under the plot rather than silently dropped.
void draw_note(std::string& o, const PlotArea& a, const std::vector<std::string>& left_out) {
  if (left_out.empty()) return;
  std::string names;
  for (const auto& n : left_out) names += (names.empty() ? "" : ", ") + n;
  fmt::format_to(std::back_inserter(o),
                 "<text class=\"note\" x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">"
                 "Not drawn (a zero value has no place on a log axis): {}</text>\n",
                 px(a.left), px(a.bottom + 52), xml_escape(names));
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '&')
      o += "&amp;";
    else if (ch == '<')
      o += "&lt;";
    else if (ch == '>')
      o += "&gt;";
    else if (ch == '"')
      o += "&quot;";
    else
      o += ch;
  }
  return o;
}

double LogAxis::to_px(double v) const {
  return px_lo + (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) * (px_hi - px_lo);
}

double LogAxis::from_px(double p) const {
  return std::pow(10.0, std::log10(lo) + (p - px_lo) / (px_hi - px_lo) * (std::log10(hi) - std::log10(lo)));
}

LogAxis log_axis(double min, double max, double px_lo, double px_hi) {
  if (!(min > 0) || !(max >= min) || !std::isfinite(max))
    throw std::runtime_error(fmt::format("svg: a log axis needs 0 < min <= max, got [{}, {}]", min, max));
  auto nice_below = [](double v) {
    double b = std::pow(10.0, decade_of(v));
    for (double m : {5.0, 2.0})
      if (m * b <= v * (1 + 1e-9)) return m * b;
    return b;
  };
  auto nice_above = [](double v) {
    double b = std::pow(10.0, decade_of(v));
    for (double m : {1.0, 2.0, 5.0})
      if (m * b >= v * (1 - 1e-9)) return m * b;
    return 10 * b;
  };
  double lo = nice_below(min), hi = nice_above(max);
  if (hi <= lo * (1 + 1e-9)) {
    lo = nice_below(lo / 1.5);
    hi = nice_above(hi * 1.5);
  }
  // Widen to the nearer power of ten when none lies inside.
  double decade = std::pow(10.0, decade_of(hi));
  if (decade < lo * (1 - 1e-9)) {
    double below = std::pow(10.0, decade_of(lo)), above = 10 * decade;
    if (lo / below <= above / hi)
      lo = below;
    else
      hi = above;
  }
  return {lo, hi, px_lo, px_hi};
}

bool PlotArea::contains(double x, double y) const {
  return x >= left && x <= right && y >= top && y <= bottom;
}

PlotArea roofline_area(const RooflineChart& c) {
  double ridge = c.ceilings.ridge();
  if (!(c.ceilings.peak_GBps > 0) || !(c.ceilings.peak_tflops > 0) || !std::isfinite(ridge))
    throw std::runtime_error("svg: the roofline needs positive peak GB/s and TFLOP/s");
  double xmin = ridge / 10, xmax = ridge, ymin = c.ceilings.peak_tflops, ymax = c.ceilings.peak_tflops;
  for (const auto& o : c.overlays) {
    double r = o.ceilings.ridge();
    if (!(o.ceilings.peak_GBps > 0) || !(o.ceilings.peak_tflops > 0) || !std::isfinite(r))
      throw std::runtime_error("svg: an overlaid roofline needs positive peak GB/s and TFLOP/s");
    xmin = std::min(xmin, r / 10);
    xmax = std::max(xmax, r);
    ymin = std::min(ymin, o.ceilings.peak_tflops);
    ymax = std::max(ymax, o.ceilings.peak_tflops);
  }
  for (const auto& p : c.points) {
    if (!drawable(p.x, p.y)) continue;
    xmin = std::min(xmin, p.x);
    xmax = std::max(xmax, p.x);
    ymin = std::min(ymin, p.y);
    ymax = std::max(ymax, p.y);
  }
  return make_area(xmin, xmax, ymin, ymax, c.legend.size());
}

std::string roofline_svg(const RooflineChart& c) {
  PlotArea a = roofline_area(c);
  double height = a.bottom + 62;
  std::string o;
  open_frame(o, a, height, c.title, c.subtitle, "arithmetic intensity (FLOP/B, log)",
             "achieved TFLOP/s (log)");
  const Ceilings& ce = c.ceilings;
  double ridge = ce.ridge();
  // Memory roof: TFLOP/s = GB/s * intensity / 1000, a line of slope 1 in log-log; it starts where it
  // enters the plot (left edge or bottom edge) and ends at the ridge.
  auto memory_roof_start = [&](const Ceilings& roof) {
    double x0 = std::max(a.x.from_px(a.left), a.y.from_px(a.bottom) * 1e3 / roof.peak_GBps);
    return std::pair{a.x.to_px(x0), a.y.to_px(roof.peak_GBps * x0 / 1e3)};
  };
  // Overlaid roofs first, dashed, so that the first report's solid roofs stay on top.
  for (const auto& ov : c.overlays) {
    auto [ox, oy] = memory_roof_start(ov.ceilings);
    double orx = a.x.to_px(ov.ceilings.ridge()), ory = a.y.to_px(ov.ceilings.peak_tflops);
    fmt::format_to(std::back_inserter(o),
                   "<line class=\"roof-memory-overlay\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" "
                   "stroke=\"{}\" stroke-width=\"1.6\" stroke-dasharray=\"6 4\"/>\n"
                   "<line class=\"roof-compute-overlay\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" "
                   "stroke=\"{}\" stroke-width=\"1.6\" stroke-dasharray=\"6 4\"/>\n",
                   px(ox), px(oy), px(orx), px(ory), xml_escape(ov.color), px(orx), px(ory), px(a.right),
                   px(ory), xml_escape(ov.color));
  }
  double rx = a.x.to_px(ridge), ry = a.y.to_px(ce.peak_tflops);
  auto [sx, sy] = memory_roof_start(ce);
  fmt::format_to(std::back_inserter(o),
                 "<line class=\"ridge\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#777\" "
                 "stroke-dasharray=\"4 3\"/>\n"
                 "<line class=\"roof-memory\" x1=\"{3}\" y1=\"{4}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#111\" "
                 "stroke-width=\"2\"/>\n"
                 "<line class=\"roof-compute\" x1=\"{0}\" y1=\"{2}\" x2=\"{5}\" y2=\"{2}\" stroke=\"#111\" "
                 "stroke-width=\"2\"/>\n"
                 "<circle class=\"ridge-point\" cx=\"{0}\" cy=\"{2}\" r=\"3\" fill=\"#111\"/>\n",
                 px(rx), px(a.bottom), px(ry), px(sx), px(sy), px(a.right));
  // The memory roof's label runs along the line, just above it, past its middle; the boxes it covers
  // (sampled along the rotated text) are kept free of point labels, as are the other two labels.
  std::string mem_label = fmt::format("memory roof {} GB/s", format_sig(ce.peak_GBps, 4));
  std::string compute_label = fmt::format("compute roof {} TFLOP/s", format_sig(ce.peak_tflops, 3));
  std::string ridge_label = fmt::format("ridge {} FLOP/B", format_sig(ridge, 3));
  double theta = std::atan2(ry - sy, rx - sx);
  double nx = std::sin(theta), ny = -std::cos(theta);  // the text's "up", rotated
  double bx = sx + 0.55 * (rx - sx) + 5 * nx, by = sy + 0.55 * (ry - sy) + 5 * ny;
  std::vector<Box> taken;
  double half = 2.8 * double(mem_label.size());
  for (double t = -half; t <= half; t += 6) {
    double cx = bx + t * std::cos(theta) + 4 * nx, cy = by + t * std::sin(theta) + 4 * ny;
    taken.push_back({cx - 5, cy - 5, cx + 5, cy + 5});
  }
  taken.push_back({a.right - 6 - 5.6 * double(compute_label.size()), ry - 14, a.right - 6, ry - 4});
  taken.push_back({rx + 4, a.bottom - 14, rx + 4 + 5.6 * double(ridge_label.size()), a.bottom - 4});
  fmt::format_to(std::back_inserter(o),
                 "<text x=\"{0}\" y=\"{1}\" font-size=\"10\" transform=\"rotate({2} {0} {1})\" "
                 "text-anchor=\"middle\">{3}</text>\n"
                 "<text x=\"{4}\" y=\"{5}\" font-size=\"10\" text-anchor=\"end\">{6}</text>\n"
                 "<text x=\"{7}\" y=\"{8}\" font-size=\"10\" fill=\"#555\">{9}</text>\n",
                 px(bx), px(by), px(theta * 180 / std::numbers::pi), xml_escape(mem_label), px(a.right - 6),
                 px(ry - 6), xml_escape(compute_label), px(rx + 4), px(a.bottom - 6),
                 xml_escape(ridge_label));
  std::vector<std::string> left_out;
  std::vector<ChartPoint> shown;
  for (const auto& p : c.points) {
    if (drawable(p.x, p.y))
      shown.push_back(p);
    else
      add_unique(left_out, p.label.empty() ? p.tooltip : p.label);
  }
  draw_points(o, a, shown, taken);
  draw_legend(o, a, c.legend);
  draw_note(o, a, left_out);
  o += "</svg>\n";
  return o;
}

PlotArea line_chart_area(const LineChart& c) {
  double xmin = INFINITY, xmax = 0, ymin = INFINITY, ymax = 0;
  for (const auto& s : c.series)
    for (const auto& p : s.points) {
      if (!drawable(p.x, p.y)) continue;
      xmin = std::min(xmin, p.x);
      xmax = std::max(xmax, p.x);
      ymin = std::min(ymin, p.y);
      ymax = std::max(ymax, p.y);
    }
  if (xmax == 0) xmin = xmax = ymin = ymax = 1;  // nothing drawable: an empty decade
  return make_area(xmin, xmax, ymin, ymax, c.legend.empty() ? c.series.size() : c.legend.size());
}

std::string line_chart_svg(const LineChart& c) {
  PlotArea a = line_chart_area(c);
  double height = a.bottom + 62;
  std::string o;
  open_frame(o, a, height, c.title, c.subtitle, c.x_title, c.y_title);
  std::vector<std::string> left_out;
  std::vector<ChartPoint> shown;  // drawn after every line, so that lines pass under the markers
  std::vector<LegendEntry> legend;
  for (const auto& s : c.series) {
    std::string pts;
    for (const auto& p : s.points)
      if (drawable(p.x, p.y)) pts += (pts.empty() ? "" : " ") + px(a.x.to_px(p.x)) + "," + px(a.y.to_px(p.y));
    fmt::format_to(
        std::back_inserter(o),
        "<polyline class=\"series\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"{}/>\n",
        pts, xml_escape(s.color),
        s.dash.empty() ? "" : fmt::format(" stroke-dasharray=\"{}\"", xml_escape(s.dash)));
    for (const auto& p : s.points) {
      if (drawable(p.x, p.y)) {
        ChartPoint q = p;
        q.color = s.color;
        q.marker = s.marker;
        shown.push_back(q);
      } else {
        add_unique(left_out, s.label);
      }
    }
    legend.push_back({s.label, s.color, s.marker, s.dash, true});
  }
  draw_points(o, a, shown);
  draw_legend(o, a, c.legend.empty() ? legend : c.legend);
  draw_note(o, a, left_out);
  o += "</svg>\n";
  return o;
}

namespace {

std::string short_label(const RunFormat& f) {
  std::string w = f.weights;
  if (f.weights == "w4a16" && f.group_size != kDefaultGroupSize) w += fmt::format(" g{}", f.group_size);
  if (f.head == "w4a16") w += " (4-bit head)";
  return fmt::format("{} + {} KV", w, f.kv);
}

std::string kind_color(const std::string& kind, std::map<std::string, std::string>& extra) {
  static const std::map<std::string, std::string> fixed = {{"gemm", "#1f77b4"},  {"attention", "#d62728"},
                                                           {"norm", "#2ca02c"},  {"elementwise", "#ff7f0e"},
                                                           {"embed", "#7f7f7f"}, {"sample", "#9467bd"}};
  if (auto it = fixed.find(kind); it != fixed.end()) return it->second;
  auto [it, fresh] = extra.emplace(kind, kPalette[(5 + extra.size()) % kPaletteSize]);
  return it->second;
}

// The plain decode runs (one context for every sequence) of format `f` at `context`, by batch: the
// points of one tokens/s line (the series gives them its colour and marker), tooltips after `prefix`.
std::vector<ChartPoint> throughput_points(const Report& r, const RunFormat& f, int context,
                                          const std::string& prefix) {
  std::vector<const RunRecord*> members;
  for (const auto& run : r.runs)
    if (run.new_tokens_per_seq == 1 && run.contexts.empty() && run.context == context && run_format(run) == f)
      members.push_back(&run);
  std::sort(members.begin(), members.end(), [](auto* a, auto* b) { return a->batch < b->batch; });
  std::vector<ChartPoint> points;
  for (const auto* run : members)
    points.push_back(
        {double(run->batch), run->step.tokens_per_s, "",
         fmt::format("{}{}: {} tokens/s", prefix, run_title(*run), format_sig(run->step.tokens_per_s, 3)), "",
         Marker::circle});
  return points;
}

std::string point_tooltip(const std::string& what, const RooflinePoint& p) {
  return fmt::format("{}: {} FLOP/B, {} TFLOP/s, {} GB/s, {} of the roof", what,
                     format_sig(p.arithmetic_intensity, 3), format_sig(p.achieved_tflops, 3),
                     format_sig(p.achieved_GBps, 3), format_percent(p.roofline_efficiency));
}

}  // namespace

std::vector<ReportChart> report_charts(const Report& r) {
  std::vector<ReportChart> out;
  if (r.runs.empty()) return out;
  std::vector<RunFormat> formats = report_formats(r);
  auto format_index = [&](const RunRecord& run) {
    return size_t(std::find(formats.begin(), formats.end(), run_format(run)) - formats.begin());
  };
  std::set<int> context_set;
  for (const auto& run : r.runs) context_set.insert(run.context);
  std::vector<int> contexts(context_set.begin(), context_set.end());
  std::string where = fmt::format("{} on {}", r.model.name, r.device.name);

  // 1. Every run's step, one chart per context (batches of one context trace one curve). A prefill
  // of N tokens ends at context N: it shares the axes (and the roofs) of the decode steps at context
  // N, drawn as a square labelled "P<N>", so the compute-bound and memory-bound sides of the same
  // engine sit on one chart.
  for (int context : contexts) {
    RooflineChart steps;
    bool decode = false, prefill = false;
    for (const auto& run : r.runs)
      if (run.context == context) (run.new_tokens_per_seq == 1 ? decode : prefill) = true;
    const std::string what = decode && prefill ? "decode step and prefill"
                             : prefill         ? "prefill"
                                               : "decode step";
    steps.title = fmt::format("Roofline of each {}, context {}", what, context);
    steps.subtitle = where;
    steps.ceilings = r.device.peak;
    std::vector<bool> present(formats.size(), false);
    for (const auto& run : r.runs) {
      if (run.context != context) continue;
      const RooflinePoint& p = run.step.point;
      present[format_index(run)] = true;
      const bool is_prefill = run.new_tokens_per_seq != 1;
      steps.points.push_back({p.arithmetic_intensity, p.achieved_tflops,
                              is_prefill ? fmt::format("P{} B={}", run.new_tokens_per_seq, run.batch)
                                         : fmt::format("B={}", run.batch),
                              point_tooltip(run_title(run), p), kPalette[format_index(run) % kPaletteSize],
                              is_prefill ? Marker::square : Marker::circle});
    }
    for (size_t f = 0; f < formats.size(); ++f)
      if (present[f])
        steps.legend.push_back(
            {short_label(formats[f]), kPalette[f % kPaletteSize], Marker::circle, "", false});
    if (decode && prefill) {
      steps.legend.push_back({"decode step", "#bbbbbb", Marker::circle, "", false});
      steps.legend.push_back({"prefill (TTFT)", "#bbbbbb", Marker::square, "", false});
    }
    out.push_back(
        {contexts.size() == 1 ? std::string("roofline") : fmt::format("roofline-ctx{}", context), steps.title,
         fmt::format("Each run's whole {} at its cost-model intensity and achieved TFLOP/s{}; the memory "
                     "roof ({} GB/s) meets the compute roof ({} TFLOP/s) at the ridge, {} FLOP/B.",
                     what, prefill ? " (prefills as squares, labelled P and their prompt length)" : "",
                     format_sig(r.device.peak.peak_GBps, 4), format_sig(r.device.peak.peak_tflops, 3),
                     format_sig(r.device.peak.ridge(), 3)),
         roofline_svg(steps)});
  }

  // 2. Per kind of op, for the first format's smallest and largest batch at its largest context.
  std::vector<size_t> chosen;
  for (size_t i : focus_runs(r))
    if (run_format(r.runs[i]) == formats[0]) chosen.push_back(i);
  if (!chosen.empty()) {
    RooflineChart kinds;
    const RunRecord& first = r.runs[chosen.front()];
    kinds.title =
        fmt::format("Roofline per kind of op, {}, context {}", short_label(formats[0]), first.context);
    kinds.ceilings = r.device.peak;
    std::map<std::string, std::string> extra;
    std::vector<std::string> kind_order;
    for (size_t n = 0; n < chosen.size(); ++n) {
      const RunRecord& run = r.runs[chosen[n]];
      for (const auto& k : run.by_kind) {
        add_unique(kind_order, k.kind);
        kinds.points.push_back(
            {k.point.arithmetic_intensity, k.point.achieved_tflops, k.kind,
             point_tooltip(fmt::format("{} ({} ops), B={}", k.kind, k.count, run.batch), k.point),
             kind_color(k.kind, extra), kMarkers[n % std::size(kMarkers)]});
      }
    }
    for (const auto& k : kind_order)
      kinds.legend.push_back({k, kind_color(k, extra), Marker::circle, "", false});
    for (size_t n = 0; n < chosen.size(); ++n)
      kinds.legend.push_back({fmt::format("B={}", r.runs[chosen[n]].batch), "#bbbbbb",
                              kMarkers[n % std::size(kMarkers)], "", false});
    std::string batches;
    for (size_t i : chosen) batches += (batches.empty() ? "B=" : " and B=") + std::to_string(r.runs[i].batch);
    out.push_back({"kinds", "Roofline per kind of op",
                   fmt::format("The ops of each kind summed (time, FLOPs and bytes) at {}, context {}, {}.",
                               batches, first.context, formats[0].label()),
                   roofline_svg(kinds)});
  }

  // 3. Tokens/s against batch, one line per (format, context).
  LineChart tput;
  tput.title = "Decode tokens/s against batch";
  tput.subtitle = where;
  tput.x_title = "batch (sequences, log)";
  tput.y_title = "tokens/s (log)";
  for (size_t f = 0; f < formats.size(); ++f)
    for (size_t ci = 0; ci < contexts.size(); ++ci) {
      LineSeries s;
      s.label = fmt::format("{}, ctx {}", short_label(formats[f]), contexts[ci]);
      s.color = kPalette[f % kPaletteSize];
      s.dash = kDashes[ci % std::size(kDashes)];
      s.marker = kMarkers[ci % std::size(kMarkers)];
      s.points = throughput_points(r, formats[f], contexts[ci], "");
      if (!s.points.empty()) tput.series.push_back(std::move(s));
    }
  if (!tput.series.empty())
    out.push_back(
        {"throughput", "Decode tokens/s against batch",
         "Tokens generated per second by the whole batch, per weight/KV format (colour) and context "
         "(line style).",
         line_chart_svg(tput)});
  return out;
}

std::vector<ReportChart> report_set_charts(const std::vector<const Report*>& reports,
                                           const std::vector<std::string>& labels) {
  std::vector<ReportChart> out;
  if (reports.empty() || labels.size() != reports.size())
    throw std::runtime_error("report_set_charts: one label per report, and at least one report");
  auto color = [](size_t i) { return std::string(kPalette[i % kPaletteSize]); };
  auto marker = [](size_t i) { return kMarkers[i % std::size(kMarkers)]; };
  std::set<int> context_set;
  for (const Report* r : reports)
    for (const auto& run : r->runs) context_set.insert(run.context);
  std::vector<int> contexts(context_set.begin(), context_set.end());
  const Ceilings& first_peak = reports[0]->device.peak;
  auto same_roofs = [&](const Ceilings& c) {
    return std::abs(c.peak_GBps - first_peak.peak_GBps) <= 1e-9 * first_peak.peak_GBps &&
           std::abs(c.peak_tflops - first_peak.peak_tflops) <= 1e-9 * first_peak.peak_tflops;
  };
  std::string models;
  for (const Report* r : reports)
    if (models.find(r->model.name) == std::string::npos)
      models += (models.empty() ? "" : ", ") + r->model.name;

  // 1. Every report's steps on one roofline per context; roofs of reports measured against other
  // ceilings overlaid, dashed, in the report's colour.
  for (int context : contexts) {
    RooflineChart chart;
    chart.title = fmt::format("Roofline of each step, context {}, {} reports", context, reports.size());
    chart.subtitle = models;
    chart.ceilings = first_peak;
    for (size_t i = 0; i < reports.size(); ++i) {
      bool present = false;
      for (const auto& run : reports[i]->runs) {
        if (run.context != context) continue;
        present = true;
        const RooflinePoint& p = run.step.point;
        std::string label = run.new_tokens_per_seq == 1
                                ? fmt::format("B={}", run.batch)
                                : fmt::format("P{} B={}", run.new_tokens_per_seq, run.batch);
        chart.points.push_back({p.arithmetic_intensity, p.achieved_tflops, label,
                                point_tooltip(labels[i] + ": " + run_title(run), p), color(i), marker(i)});
      }
      if (present) chart.legend.push_back({labels[i], color(i), marker(i), "", false});
    }
    for (size_t i = 1; i < reports.size(); ++i)
      if (!same_roofs(reports[i]->device.peak)) {
        chart.overlays.push_back({reports[i]->device.peak, color(i)});
        chart.legend.push_back({labels[i] + " roofs", color(i), marker(i), "6 4", true});
      }
    out.push_back({contexts.size() == 1 ? std::string("roofline") : fmt::format("roofline-ctx{}", context),
                   fmt::format("Roofline of each step, context {}", context),
                   fmt::format("Each report's steps at context {} in its own colour and marker, against the "
                               "roofs of {} ({} GB/s, {} TFLOP/s){}.",
                               context, labels[0], format_sig(first_peak.peak_GBps, 4),
                               format_sig(first_peak.peak_tflops, 3),
                               chart.overlays.empty() ? "" : "; dashed: the roofs of the other reports"),
                   roofline_svg(chart)});
  }

  // 2. Decode tokens/s against batch: a line per (report, format, context), the report's colour and
  // marker, the dash per (format, context) shared by every report.
  LineChart tput;
  tput.title = "Decode tokens/s against batch";
  tput.subtitle = models;
  tput.x_title = "batch (sequences, log)";
  tput.y_title = "tokens/s (log)";
  std::vector<std::pair<RunFormat, int>> styles;  // (format, context) in order of first appearance
  for (size_t i = 0; i < reports.size(); ++i) {
    std::vector<RunFormat> formats = report_formats(*reports[i]);
    for (const auto& f : formats)
      for (int context : contexts) {
        std::vector<ChartPoint> points = throughput_points(*reports[i], f, context, labels[i] + ": ");
        if (points.empty()) continue;
        auto style = std::find(styles.begin(), styles.end(), std::pair{f, context});
        if (style == styles.end()) style = styles.insert(styles.end(), {f, context});
        LineSeries series;
        series.label = fmt::format("{}: {}, ctx {}", labels[i], short_label(f), context);  // in notes
        series.color = color(i);
        series.dash = kDashes[size_t(style - styles.begin()) % std::size(kDashes)];
        series.marker = marker(i);
        series.points = std::move(points);
        tput.series.push_back(std::move(series));
      }
  }
  // The legend names each report once (colour and marker) and each line style once, in grey.
  for (size_t i = 0; i < reports.size(); ++i)
    if (std::any_of(tput.series.begin(), tput.series.end(),
                    [&](const LineSeries& s) { return s.color == color(i); }))
      tput.legend.push_back({labels[i], color(i), marker(i), "", false});
  if (styles.size() > 1)
    for (size_t k = 0; k < styles.size(); ++k)
      tput.legend.push_back({fmt::format("{}, ctx {}", short_label(styles[k].first), styles[k].second),
                             "#777777", Marker::circle, kDashes[k % std::size(kDashes)], true});
  if (!tput.series.empty())
    out.push_back(
        {"throughput", "Decode tokens/s against batch",
         "Tokens generated per second by the whole batch: colour and marker per report, line style per "
         "weight/KV format and context.",
         line_chart_svg(tput)});
  return out;
}

}  // namespace ridgeline
