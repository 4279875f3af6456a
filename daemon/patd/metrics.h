// DaemonMetrics: what `patd --metrics-listen` serves at /metrics, in
// Prometheus' text exposition format (prometheus_text.h). Counters of
// member starts, exits and refusals come from the event bus as events
// happen; per group and per member figures from each running host's
// io.pat.Host.Describe, asked for at scrape time, a few hosts at a time
// (the same call Group.Show and `patctl top` make; the host reads /proc and
// measures memory on its own loop, outside the group lock); patd's own
// connections and requests from its server and service. The page is
// written on a thread of its own from a copy of all that (64 groups of 16
// members make ~9000 samples, tens of milliseconds of formatting that
// would otherwise delay every control call behind it). Names follow
// Prometheus' conventions (base units, `_total` for counters, `_seconds`,
// `_bytes`); docs/metrics.md lists them.
#pragma once

#include "daemon/patd/event_bus.h"
#include "daemon/patd/group_registry.h"
#include "daemon/patd/prometheus_text.h"
#include "daemon/rpc/service.h"
#include "daemon/rpc/unix_server.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pat::patd {

class DaemonMetrics {
 public:
  DaemonMetrics(GroupRegistry& registry, EventBus& events, const rpc::Service& service,
                const rpc::UnixServer& server);

  // The whole page. A host that does not answer within kHostCallTimeout is
  // left out and counted in pat_scrape_host_errors_total; patd's loop
  // serves everyone else meanwhile.
  asio::awaitable<std::string> scrape();

  // What the page is written from: copies, owned by the writing thread.
  struct PageInputs {
    std::size_t groups = 0;
    std::vector<std::pair<std::string, HostDescription>> described;  // by group name
    std::map<Labels, std::uint64_t> starts, exits, refusals;
    std::uint64_t ooms = 0, host_deaths = 0, host_errors = 0;
    std::size_t connections = 0;
    rpc::Service::RequestCounts requests;
  };

 private:
  void count(const proto::DaemonEvent& event);
  // Runs write_page(inputs) on writer_ and resumes on the caller's loop.
  asio::awaitable<std::string> written_off_loop(const PageInputs& inputs);

  GroupRegistry& registry_;
  const rpc::Service& service_;
  const rpc::UnixServer& server_;
  // Counters since patd started, by label set. No group label: ephemeral
  // groups each have a new name, and a counter per name would never go.
  std::map<Labels, std::uint64_t> starts_, exits_, refusals_;
  std::uint64_t ooms_ = 0, host_deaths_ = 0, host_errors_ = 0;
  asio::thread_pool writer_{1};  // destroyed (joined) before the loop whose frames it writes into
};

}  // namespace pat::patd
