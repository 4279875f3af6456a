#include "daemon/patd/prometheus_text.h"

#include <charconv>
#include <cmath>

namespace pat::patd {

namespace {

// Prometheus' float syntax: Go's, with +Inf, -Inf and NaN spelled so.
void append_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buffer[32];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;  // shortest exact form
    out.append(buffer, end);
  }
}

const char* type_name(PrometheusText::Type type) {
  switch (type) {
    case PrometheusText::Type::Counter: return "counter";
    case PrometheusText::Type::Gauge: return "gauge";
    case PrometheusText::Type::Histogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

Labels::Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  for (const auto& [key, value] : pairs) add(key, value);
}

Labels Labels::with(std::string_view key, std::string_view value) const {
  Labels out = *this;
  out.add(key, value);
  return out;
}

void Labels::add(std::string_view key, std::string_view value) {
  if (!text_.empty()) text_ += ',';
  text_ += key;
  text_ += "=\"";
  for (char c : value) {
    if (c == '\n') {
      text_ += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
}

std::size_t PrometheusText::declare(std::string_view name, Type type, std::string_view help) {
  Family family{std::string(name), {}};
  family.text.append("# HELP ").append(name).append(" ").append(help).append("\n");
  family.text.append("# TYPE ").append(name).append(" ").append(type_name(type)).append("\n");
  families_.push_back(std::move(family));
  return families_.size() - 1;
}

void PrometheusText::line(std::string& out, std::string_view name, std::string_view suffix, const std::string& labels,
                          double value) {
  out += name;
  out += suffix;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void PrometheusText::sample(std::size_t family, const Labels& labels, double value) {
  Family& f = families_.at(family);
  line(f.text, f.name, "", labels.text(), value);
}

void PrometheusText::histogram(std::size_t family, const Labels& labels, std::span<const double> bounds,
                               std::span<const std::uint64_t> cumulative, std::uint64_t count, double sum) {
  Family& f = families_.at(family);
  for (std::size_t i = 0; i < bounds.size() && i < cumulative.size(); ++i) {
    std::string le;
    append_number(le, bounds[i]);
    line(f.text, f.name, "_bucket", labels.with("le", le).text(), static_cast<double>(cumulative[i]));
  }
  line(f.text, f.name, "_bucket", labels.with("le", "+Inf").text(), static_cast<double>(count));
  line(f.text, f.name, "_sum", labels.text(), sum);
  line(f.text, f.name, "_count", labels.text(), static_cast<double>(count));
}

std::string PrometheusText::render() const {
  std::size_t size = 0;
  for (const auto& family : families_) size += family.text.size();
  std::string out;
  out.reserve(size);
  for (const auto& family : families_) out += family.text;
  return out;
}

}  // namespace pat::patd
