// Makes `import pat` work under pat-python with no environment variables and
// without adding anything to sys.path, which must stay identical to
// /usr/bin/python3.11's: a meta-path finder that knows one directory.
#pragma once

#include <filesystem>

namespace pat::python {

// Installs, into the initialised interpreter, a finder that resolves the
// top-level names `pat` and `_pat*` from `package_root` (<prefix>/lib/pat/python)
// and nothing else. Returns false with the Python exception printed to stderr
// if that failed.
bool install_pat_package_finder(const std::filesystem::path& package_root);

}  // namespace pat::python
