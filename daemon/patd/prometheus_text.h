// PrometheusText: a page in Prometheus' text exposition format, version
// 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats): each family
// declared once with its HELP and TYPE, then its samples, families in the
// order declared. Label values are escaped here (\\, \" and \n); names are
// the caller's constants.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pat::patd {

// A label set rendered once, `key="value",...`, to be reused by samples.
class Labels {
 public:
  Labels() = default;
  Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs);
  Labels with(std::string_view key, std::string_view value) const;
  const std::string& text() const { return text_; }
  bool operator<(const Labels& other) const { return text_ < other.text_; }

 private:
  void add(std::string_view key, std::string_view value);
  std::string text_;
};

class PrometheusText {
 public:
  enum class Type { Counter, Gauge, Histogram };
  // Returns the family's index, for sample().
  std::size_t declare(std::string_view name, Type type, std::string_view help);

  void sample(std::size_t family, const Labels& labels, double value);
  // A histogram's _bucket series (cumulative, `le` the bounds, then +Inf
  // with `count`), _sum and _count.
  void histogram(std::size_t family, const Labels& labels, std::span<const double> bounds,
                 std::span<const std::uint64_t> cumulative, std::uint64_t count, double sum);

  std::string render() const;

 private:
  void line(std::string& out, std::string_view name, std::string_view suffix, const std::string& labels, double value);

  struct Family {
    std::string name;
    std::string text;
  };
  std::vector<Family> families_;
};

}  // namespace pat::patd
