// A C interface over PyTorch's c10d (the libtorch that tch links): stores, process groups
// and the collectives genae needs. Every function catches every C++ exception and returns it
// as a message (malloc'd, freed by genae_dist_free); NULL means success. Nothing throws across
// this boundary. Tensors arrive as tch's `Tensor::as_ptr()`, an `at::Tensor*`.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef GENAE_DIST_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

struct genae_store {
  c10::intrusive_ptr<c10d::Store> store;
};

struct genae_pg {
  c10::intrusive_ptr<c10d::Backend> backend;
};

namespace {

char* copy_message(const std::string& message) {
  char* out = static_cast<char*>(std::malloc(message.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, message.c_str(), message.size() + 1);
  }
  return out;
}

// Runs `body`, turning any exception into a message.
template <typename F>
char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const c10::Error& e) {
    return copy_message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return copy_message(e.what());
  } catch (...) {
    return copy_message("an unknown C++ exception");
  }
}

std::chrono::milliseconds millis(int64_t ms) {
  return std::chrono::milliseconds(ms);
}

void wait_for(const c10::intrusive_ptr<c10d::Work>& work, int64_t timeout_ms) {
  if (!work->wait(millis(timeout_ms))) {
    throw std::runtime_error("did not complete within " + std::to_string(timeout_ms) + " ms");
  }
}

}  // namespace

extern "C" {

void genae_dist_free(void* p) {
  std::free(p);
}

char* genae_store_tcp(const char* host, uint16_t port, bool is_server, int world_size,
                      bool wait_workers, int64_t timeout_ms, genae_store** out) {
  return guarded([&] {
    c10d::TCPStoreOptions opts;
    opts.port = port;
    opts.isServer = is_server;
    if (world_size > 0) {
      opts.numWorkers = static_cast<std::size_t>(world_size);
    }
    opts.waitWorkers = wait_workers;
    opts.timeout = millis(timeout_ms);
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    *out = new genae_store{store};
  });
}

char* genae_store_port(genae_store* s, uint16_t* port) {
  return guarded([&] {
    auto* tcp = dynamic_cast<c10d::TCPStore*>(s->store.get());
    if (tcp == nullptr) {
      throw std::runtime_error("not a TCP store");
    }
    *port = tcp->getPort();
  });
}

char* genae_store_file(const char* path, int world_size, genae_store** out) {
  return guarded([&] {
    auto store = c10::make_intrusive<c10d::FileStore>(std::string(path), world_size);
    *out = new genae_store{store};
  });
}

char* genae_store_prefix(const char* prefix, genae_store* inner, genae_store** out) {
  return guarded([&] {
    auto store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), inner->store);
    *out = new genae_store{store};
  });
}

char* genae_store_clone(genae_store* s, genae_store** out) {
  return guarded([&] { *out = new genae_store{s->store->clone()}; });
}

char* genae_store_set_timeout(genae_store* s, int64_t timeout_ms) {
  return guarded([&] { s->store->setTimeout(millis(timeout_ms)); });
}

char* genae_store_set(genae_store* s, const char* key, const uint8_t* value, size_t len) {
  return guarded([&] {
    std::vector<uint8_t> bytes(value, value + len);
    s->store->set(std::string(key), bytes);
  });
}

char* genae_store_get(genae_store* s, const char* key, uint8_t** value, size_t* len) {
  return guarded([&] {
    std::vector<uint8_t> bytes = s->store->get(std::string(key));
    *len = bytes.size();
    *value = static_cast<uint8_t*>(std::malloc(bytes.empty() ? 1 : bytes.size()));
    if (*value == nullptr) {
      throw std::runtime_error("out of memory");
    }
    if (!bytes.empty()) {
      std::memcpy(*value, bytes.data(), bytes.size());
    }
  });
}

char* genae_store_add(genae_store* s, const char* key, int64_t delta, int64_t* total) {
  return guarded([&] { *total = s->store->add(std::string(key), delta); });
}

void genae_store_free(genae_store* s) {
  try {
    delete s;
  } catch (...) {
  }
}

char* genae_pg_gloo(genae_store* s, int rank, int size, int64_t timeout_ms, const char* interface,
                    const char* hostname, genae_pg** out) {
  return guarded([&] {
    auto options = c10d::ProcessGroupGloo::Options::create(millis(timeout_ms));
    if (interface != nullptr && interface[0] != '\0') {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForInterface(std::string(interface)));
    } else if (hostname != nullptr && hostname[0] != '\0') {
      options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForHostname(std::string(hostname)));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = 1;
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(s->store, rank, size, options);
    *out = new genae_pg{pg};
  });
}

bool genae_dist_has_nccl() {
#ifdef GENAE_DIST_NCCL
  return true;
#else
  return false;
#endif
}

char* genae_pg_nccl(genae_store* s, int rank, int size, int64_t timeout_ms, genae_pg** out) {
  return guarded([&] {
#ifdef GENAE_DIST_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = millis(timeout_ms);
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(s->store, rank, size, options);
    *out = new genae_pg{pg};
#else
    (void)s;
    (void)rank;
    (void)size;
    (void)timeout_ms;
    (void)out;
    throw std::runtime_error("genae-dist was built without the `nccl` feature");
#endif
  });
}

char* genae_pg_allreduce_sum(genae_pg* pg, void* tensor, int64_t timeout_ms) {
  return guarded([&] {
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor*>(tensor)};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    opts.timeout = millis(timeout_ms);
    wait_for(pg->backend->allreduce(tensors, opts), timeout_ms);
  });
}

char* genae_pg_broadcast(genae_pg* pg, void* tensor, int root, int64_t timeout_ms) {
  return guarded([&] {
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor*>(tensor)};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.timeout = millis(timeout_ms);
    wait_for(pg->backend->broadcast(tensors, opts), timeout_ms);
  });
}

char* genae_pg_barrier(genae_pg* pg, int64_t timeout_ms) {
  return guarded([&] {
    c10d::BarrierOptions opts;
    opts.timeout = millis(timeout_ms);
    wait_for(pg->backend->barrier(opts), timeout_ms);
  });
}

void genae_pg_free(genae_pg* pg) {
  try {
    delete pg;
  } catch (...) {
  }
}

}  // extern "C"
