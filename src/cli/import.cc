// `postern import docker-mailserver DIR [--output FILE] [--dry-run] [--force]`: reads the
// folder, asks import::planImport for the plan, prints the report and writes the files.
// All file-system work of the import is here; the plan itself is pure (import/dms_import.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "config/config.h"
#include "import/dms_import.h"
#include "util/fs.h"

#include <fmt/format.h>

namespace postern::cli {

namespace {

namespace fs = std::filesystem;

// Larger files are not settings (mail, logs, archives): they are listed as not read.
constexpr uintmax_t kMaxInputFileSize = 1024 * 1024;
constexpr const char* kEnvFileName = "mailserver.env";

std::optional<std::string> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reads every regular file under `dir` into `in`.
void readFolder(const fs::path& dir, import::ImportInput& in) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code sec;
    if (!it->is_regular_file(sec)) continue;
    std::string rel = fs::relative(it->path(), dir, sec).generic_string();
    uintmax_t size = it->file_size(sec);
    if (sec) {
      in.unread[rel] = sec.message();
    } else if (size > kMaxInputFileSize) {
      in.unread[rel] = fmt::format("larger than {} bytes", kMaxInputFileSize);
    } else if (auto text = slurp(it->path())) {
      in.files[rel] = std::move(*text);
    } else {
      in.unread[rel] = std::strerror(errno);
    }
  }
}

}  // namespace

int runImport(const Args& a) {
  if (a.positional.size() != 3 || a.positional[1] != "docker-mailserver") return usage(2);
  const fs::path dir = a.positional[2];
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    std::fprintf(
        stderr, "postern: %s is not a folder (give the docker-mailserver config folder, e.g. docker-data/dms/config)\n",
        dir.c_str());
    return 1;
  }
  import::ImportInput in;
  readFolder(dir, in);
  // mailserver.env sits in the config folder or, in the documented layout, beside it.
  if (auto it = in.files.find(kEnvFileName); it != in.files.end()) {
    in.has_env = true;
    in.env_label = kEnvFileName;
    in.env_text = std::move(it->second);
    in.files.erase(it);
  } else if (auto text = slurp(dir / ".." / kEnvFileName)) {
    in.has_env = true;
    in.env_label = std::string("../") + kEnvFileName;
    in.env_text = std::move(*text);
  }

  import::Plan plan = import::planImport(in, import::detectFeatures());
  for (const auto& line : plan.report) std::printf("%s\n", line.c_str());
  std::printf("summary  %u mapped, %u not carried over, %u warnings\n", plan.mapped, plan.not_carried, plan.warnings);

  std::string output = a.output.empty() ? a.config_path : a.output;
  // A folder (existing, or written with a trailing '/') gets the file's usual name.
  if (!output.empty() && (output.back() == '/' || fs::is_directory(output, ec)))
    output = (fs::path(output) / "postern.toml").string();
  const fs::path out_dir = fs::path(output).parent_path().empty() ? fs::path(".") : fs::path(output).parent_path();
  std::vector<std::pair<fs::path, const import::OutputFile*>> targets;
  import::OutputFile toml{fs::path(output).filename().string(), plan.toml, 0600};
  targets.emplace_back(fs::path(output), &toml);
  for (const auto& f : plan.files) targets.emplace_back(out_dir / f.path, &f);

  if (a.dry_run) {
    for (const auto& [p, f] : targets) std::printf("would write  %s  (mode %04o)\n", p.c_str(), f->mode);
    std::printf("--- %s (dry run: nothing written) ---\n%s", output.c_str(), plan.toml.c_str());
    return 0;
  }
  std::vector<std::string> existing;
  for (const auto& [p, f] : targets)
    if (fs::exists(p, ec)) existing.push_back(p.string());
  if (!existing.empty() && !a.force) {
    for (const auto& e : existing) std::fprintf(stderr, "postern: %s exists\n", e.c_str());
    std::fprintf(stderr, "postern: nothing written; use --force to replace these files, or --output elsewhere\n");
    return 1;
  }
  std::vector<std::string> dirs;
  for (const auto& [p, f] : targets) {
    std::string parent = p.parent_path().empty() ? "." : p.parent_path().string();
    if (Status s = makeDirs(parent, 0700); !s) {
      std::fprintf(stderr, "postern: %s\n", s.message().c_str());
      return 1;
    }
    if (Status s = replaceFileDurably(p.string(), f->content, f->mode, ".postern-import.tmp"); !s) {
      std::fprintf(stderr, "postern: %s\n", s.message().c_str());
      return 1;
    }
    if (std::find(dirs.begin(), dirs.end(), parent) == dirs.end()) dirs.push_back(parent);
    std::printf("wrote  %s  (mode %04o)\n", p.c_str(), f->mode);
  }
  for (const auto& d : dirs) fsyncDir(d);

  // The generated configuration is checked at once, so the operator sees what is left to do.
  config::LoadResult r = config::load(output);
  for (const auto& d : r.diagnostics) std::fprintf(stderr, "%s\n", d.toString().c_str());
  if (r.hasErrors()) {
    // The import itself succeeded: what is left (e.g. a certificate path on this host) is
    // for the operator, and `postern config check` keeps saying so until it is done.
    std::fprintf(stderr, "postern: %s was written but does not pass 'postern config check' yet (see above)\n",
                 output.c_str());
    return 0;
  }
  std::printf("next  postern config check --config %s\n", output.c_str());
  return 0;
}

}  // namespace postern::cli
