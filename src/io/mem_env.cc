#include "io/mem_env.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

namespace postern::io {

struct MemEnv::Node {
  bool folder = false;
  bool dirty = false;     // something not yet durable (a sync would copy it)
  bool freed = false;     // unreachable from any name, current or durable, and not open
  std::string data, durable;                            // files
  std::map<std::string, size_t> entries, durable_entries;   // folders
};

namespace {
Status err(int e, std::string_view what, std::string_view name) {
  return Status::fromErrno(e, fmt::format("{} {}: {}", what, name, std::strerror(e)));
}
}  // namespace

MemEnv::MemEnv() { newNode(true); }
MemEnv::~MemEnv() = default;

size_t MemEnv::newNode(bool folder) {
  nodes_.push_back(std::make_unique<Node>());
  nodes_.back()->folder = folder;
  return nodes_.size() - 1;
}

Result<MemEnv::Lookup> MemEnv::resolve(int dir, const std::string& name) {
  size_t cur = 0;
  if (dir != kCwd && (name.empty() || name[0] != '/')) {
    auto it = open_.find(dir);
    if (it == open_.end()) return err(EBADF, "resolve", name);
    cur = it->second.node;
  }
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string::npos) slash = name.size();
    std::string part = name.substr(pos, slash - pos);
    if (!part.empty() && part != ".") parts.push_back(part);
    pos = slash + 1;
  }
  Lookup out;
  out.parent = cur;
  out.node = static_cast<long>(cur);
  for (size_t i = 0; i < parts.size(); ++i) {
    Node& n = *nodes_[cur];
    if (!n.folder) return err(ENOTDIR, "resolve", name);
    if (parts[i] == "..") return err(EINVAL, "resolve (no '..' in MemEnv)", name);
    out.parent = cur;
    out.name = parts[i];
    auto it = n.entries.find(parts[i]);
    if (it == n.entries.end()) {
      if (i + 1 < parts.size()) return err(ENOENT, "resolve", name);
      out.node = -1;
      return out;
    }
    cur = it->second;
    out.node = static_cast<long>(cur);
  }
  return out;
}

Result<size_t> MemEnv::nodeOf(int fd) {
  auto it = open_.find(fd);
  if (it == open_.end()) return err(EBADF, "handle", std::to_string(fd));
  return it->second.node;
}

Result<int> MemEnv::openAt(int dir, const std::string& name, unsigned flags, unsigned) {
  std::lock_guard lock(mu_);
  auto l = resolve(dir, name);
  if (!l) return l.status();
  size_t node;
  if (l->node < 0) {
    if (!(flags & kCreate)) return err(ENOENT, "open", name);
    if (flags & kDirectory) return err(ENOENT, "open", name);
    node = newNode(false);
    nodes_[l->parent]->entries[l->name] = node;
    nodes_[l->parent]->dirty = true;
  } else {
    if ((flags & kCreate) && (flags & kExclusive)) return err(EEXIST, "open", name);
    node = static_cast<size_t>(l->node);
    if ((flags & kDirectory) && !nodes_[node]->folder) return err(ENOTDIR, "open", name);
    if (nodes_[node]->folder && (flags & kWrite)) return err(EISDIR, "open", name);
    if (flags & kTruncate) {
      nodes_[node]->data.clear();
      nodes_[node]->dirty = true;
    }
  }
  int fd = next_fd_++;
  open_[fd] = Open{node, flags, 0};
  return fd;
}

Status MemEnv::close(int fd) {
  std::lock_guard lock(mu_);
  auto it = open_.find(fd);
  if (it == open_.end()) return err(EBADF, "close", std::to_string(fd));
  if (auto l = locks_.find(it->second.node); l != locks_.end() && l->second == fd) locks_.erase(l);
  open_.erase(it);
  return Status::ok();
}

Result<size_t> MemEnv::writev(int fd, const iovec* iov, int count) {
  std::lock_guard lock(mu_);
  auto it = open_.find(fd);
  if (it == open_.end() || !(it->second.flags & kWrite)) return err(EBADF, "write", std::to_string(fd));
  Node& n = *nodes_[it->second.node];
  uint64_t& pos = it->second.pos;
  if (it->second.flags & kAppend) pos = n.data.size();
  size_t total = 0;
  for (int i = 0; i < count; ++i) {
    const char* p = static_cast<const char*>(iov[i].iov_base);
    if (n.data.size() < pos) n.data.resize(pos, '\0');
    size_t over = std::min<size_t>(iov[i].iov_len, n.data.size() - pos);
    n.data.replace(pos, over, p, over);
    n.data.append(p + over, iov[i].iov_len - over);
    pos += iov[i].iov_len;
    total += iov[i].iov_len;
  }
  n.dirty = true;
  return total;
}

Result<size_t> MemEnv::pread(int fd, void* buf, size_t len, uint64_t offset) {
  std::lock_guard lock(mu_);
  auto node = nodeOf(fd);
  if (!node) return node.status();
  const Node& n = *nodes_[*node];
  if (n.folder) return err(EISDIR, "read", std::to_string(fd));
  if (offset >= n.data.size()) return size_t{0};
  size_t k = std::min<size_t>(len, n.data.size() - offset);
  std::memcpy(buf, n.data.data() + offset, k);
  return k;
}

Status MemEnv::fsync(int fd) {
  std::lock_guard lock(mu_);
  auto node = nodeOf(fd);
  if (!node) return node.status();
  Node& n = *nodes_[*node];
  if (n.folder) n.durable_entries = n.entries;
  else n.durable = n.data;
  n.dirty = false;
  return Status::ok();
}

Status MemEnv::fdatasync(int fd) {
  std::lock_guard lock(mu_);
  auto node = nodeOf(fd);
  if (!node) return node.status();
  Node& n = *nodes_[*node];
  if (!n.folder) {
    n.durable = n.data;
    n.dirty = false;
  }
  return Status::ok();
}

Status MemEnv::syncfs(int fd) {
  std::lock_guard lock(mu_);
  if (auto node = nodeOf(fd); !node) return node.status();
  for (auto& n : nodes_) {
    if (!n->dirty) continue;
    n->durable = n->data;
    n->durable_entries = n->entries;
    n->dirty = false;
  }
  collect();
  return Status::ok();
}

Status MemEnv::ftruncate(int fd, uint64_t size) {
  std::lock_guard lock(mu_);
  auto it = open_.find(fd);
  if (it == open_.end() || !(it->second.flags & kWrite)) return err(EBADF, "truncate", std::to_string(fd));
  nodes_[it->second.node]->data.resize(size, '\0');
  nodes_[it->second.node]->dirty = true;
  return Status::ok();
}

Result<uint64_t> MemEnv::fileSize(int fd) {
  std::lock_guard lock(mu_);
  auto node = nodeOf(fd);
  if (!node) return node.status();
  return static_cast<uint64_t>(nodes_[*node]->data.size());
}

Result<FileType> MemEnv::typeAt(int dir, const std::string& name) {
  std::lock_guard lock(mu_);
  auto l = resolve(dir, name);
  if (!l) {
    if (l.status().sysErrno() == ENOENT) return FileType::kMissing;
    return l.status();
  }
  if (l->node < 0) return FileType::kMissing;
  return nodes_[static_cast<size_t>(l->node)]->folder ? FileType::kDirectory : FileType::kFile;
}

Status MemEnv::mkdirAt(int dir, const std::string& name, unsigned) {
  std::lock_guard lock(mu_);
  auto l = resolve(dir, name);
  if (!l) return l.status();
  if (l->node >= 0) return err(EEXIST, "mkdir", name);
  size_t node = newNode(true);
  nodes_[l->parent]->entries[l->name] = node;
  nodes_[l->parent]->dirty = true;
  return Status::ok();
}

Status MemEnv::renameAt(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  std::lock_guard lock(mu_);
  auto a = resolve(from_dir, from);
  if (!a) return a.status();
  if (a->node < 0) return err(ENOENT, "rename", from);
  auto b = resolve(to_dir, to);
  if (!b) return b.status();
  if (b->node >= 0 && nodes_[static_cast<size_t>(b->node)]->folder) {
    if (!nodes_[static_cast<size_t>(a->node)]->folder) return err(EISDIR, "rename", to);
    if (!nodes_[static_cast<size_t>(b->node)]->entries.empty()) return err(ENOTEMPTY, "rename", to);
  }
  nodes_[a->parent]->entries.erase(a->name);
  nodes_[b->parent]->entries[b->name] = static_cast<size_t>(a->node);
  nodes_[a->parent]->dirty = nodes_[b->parent]->dirty = true;
  return Status::ok();
}

Status MemEnv::linkAt(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  std::lock_guard lock(mu_);
  auto a = resolve(from_dir, from);
  if (!a) return a.status();
  if (a->node < 0) return err(ENOENT, "link", from);
  if (nodes_[static_cast<size_t>(a->node)]->folder) return err(EPERM, "link", from);
  auto b = resolve(to_dir, to);
  if (!b) return b.status();
  if (b->node >= 0) return err(EEXIST, "link", to);
  nodes_[b->parent]->entries[b->name] = static_cast<size_t>(a->node);
  nodes_[b->parent]->dirty = true;
  return Status::ok();
}

Status MemEnv::unlinkAt(int dir, const std::string& name, bool folder) {
  std::lock_guard lock(mu_);
  auto l = resolve(dir, name);
  if (!l) return l.status();
  if (l->node < 0) return err(ENOENT, "unlink", name);
  Node& n = *nodes_[static_cast<size_t>(l->node)];
  if (folder && !n.folder) return err(ENOTDIR, "rmdir", name);
  if (!folder && n.folder) return err(EISDIR, "unlink", name);
  if (folder && !n.entries.empty()) return err(ENOTEMPTY, "rmdir", name);
  nodes_[l->parent]->entries.erase(l->name);
  nodes_[l->parent]->dirty = true;
  if (++unlinks_ % kCollectEvery == 0) collect();
  return Status::ok();
}

// Frees the bytes of files no name (current or durable) and no handle reaches: a crash
// cannot bring them back. Keeps tests that write gigabytes over time small.
void MemEnv::collect() {
  std::vector<bool> reached(nodes_.size(), false);
  reached[0] = true;
  for (const auto& [fd, o] : open_) reached[o.node] = true;
  for (const auto& n : nodes_) {
    if (!n->folder) continue;
    for (const auto& [k, v] : n->entries) reached[v] = true;
    for (const auto& [k, v] : n->durable_entries) reached[v] = true;
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (reached[i] || nodes_[i]->freed) continue;
    nodes_[i]->freed = true;
    std::string().swap(nodes_[i]->data);
    std::string().swap(nodes_[i]->durable);
    nodes_[i]->dirty = false;
  }
}

Result<std::vector<std::string>> MemEnv::listDir(int dir) {
  std::lock_guard lock(mu_);
  auto node = nodeOf(dir);
  if (!node) return node.status();
  const Node& n = *nodes_[*node];
  if (!n.folder) return err(ENOTDIR, "list", std::to_string(dir));
  std::vector<std::string> out;
  for (const auto& [k, v] : n.entries) out.push_back(k);
  return out;
}

Status MemEnv::lock(int fd) {
  std::lock_guard lock(mu_);
  auto node = nodeOf(fd);
  if (!node) return node.status();
  auto [it, inserted] = locks_.emplace(*node, fd);
  if (!inserted && it->second != fd) return err(EWOULDBLOCK, "lock", std::to_string(fd));
  return Status::ok();
}

void MemEnv::crash(CrashMode mode, uint64_t seed) {
  std::lock_guard lock(mu_);
  std::mt19937_64 rng(seed);
  for (auto& n : nodes_) {
    n->dirty = false;
    if (n->freed) continue;
    if (n->folder) {
      n->entries = n->durable_entries;
      continue;
    }
    bool appended = n->data.size() > n->durable.size() && n->data.compare(0, n->durable.size(), n->durable) == 0;
    if (mode == CrashMode::kTornUnsynced && appended) {
      size_t extra = rng() % (n->data.size() - n->durable.size() + 1);
      n->data.resize(n->durable.size() + extra);
      n->durable = n->data;
    } else {
      n->data = n->durable;
    }
  }
  open_.clear();
  locks_.clear();
  collect();
}

Result<std::string> MemEnv::contents(const std::string& path) {
  std::lock_guard lock(mu_);
  auto l = resolve(kCwd, path);
  if (!l) return l.status();
  if (l->node < 0) return err(ENOENT, "read", path);
  return nodes_[static_cast<size_t>(l->node)]->data;
}

Result<std::vector<std::string>> MemEnv::entries(const std::string& path) {
  std::lock_guard lock(mu_);
  auto l = resolve(kCwd, path);
  if (!l) return l.status();
  if (l->node < 0) return err(ENOENT, "list", path);
  std::vector<std::string> out;
  for (const auto& [k, v] : nodes_[static_cast<size_t>(l->node)]->entries) out.push_back(k);
  return out;
}

Status MemEnv::put(const std::string& path, std::string data) {
  std::lock_guard lock(mu_);
  auto l = resolve(kCwd, path);
  if (!l) return l.status();
  size_t node;
  if (l->node < 0) {
    node = newNode(false);
    nodes_[l->parent]->entries[l->name] = node;
    nodes_[l->parent]->durable_entries[l->name] = node;
  } else {
    node = static_cast<size_t>(l->node);
  }
  nodes_[node]->data = data;
  nodes_[node]->durable = std::move(data);
  nodes_[node]->dirty = false;
  return Status::ok();
}

uint64_t MemEnv::bytesUsed() {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  for (const auto& n : nodes_) total += n->data.size();
  return total;
}

}  // namespace postern::io
