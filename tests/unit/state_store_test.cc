#include "core/state_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/files.h"
#include "core/validate.h"
#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/netcell-store-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Record record(const std::string& name, Phase phase = Phase::kReady) {
    Record r;
    r.info.name = name;
    r.info.created_unix_ms = 1;
    r.phase = phase;
    return r;
  }

  std::string dir_;
};

TEST_F(StateStoreTest, WritesReadsAndRemoves) {
  auto store = StateStore::open(dir_ + "/run");
  ASSERT_TRUE(store) << store.error().to_string();
  EXPECT_FALSE(*store->read("a"));
  ASSERT_TRUE(store->write(record("a")));
  auto back = store->read("a");
  ASSERT_TRUE(back && *back);
  EXPECT_EQ((*back)->info.name, "a");
  EXPECT_EQ((*back)->phase, Phase::kReady);
  ASSERT_TRUE(store->remove("a"));
  EXPECT_FALSE(*store->read("a"));
  EXPECT_TRUE(store->remove("a"));  // idempotent
  // Nothing but the record directory and the lock remain; no temp files.
  for (const auto& e : fs::directory_iterator(dir_ + "/run/namespaces")) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
}

TEST_F(StateStoreTest, ListsSortedAndSetsCorruptRecordsAside) {
  auto store = StateStore::open(dir_);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->write(record("b")));
  ASSERT_TRUE(store->write(record("a", Phase::kCreating)));
  std::ofstream(dir_ + "/namespaces/c.json") << "{\"phase\": \"ready\", \"namesp";  // truncated
  std::ofstream(dir_ + "/namespaces/d.json") << "[]";
  auto listing = store->list();
  ASSERT_EQ(listing.records.size(), 2U);
  EXPECT_EQ(listing.records[0].info.name, "a");
  EXPECT_EQ(listing.records[0].phase, Phase::kCreating);
  EXPECT_EQ(listing.records[1].info.name, "b");
  ASSERT_EQ(listing.corrupt.size(), 2U);
  EXPECT_EQ(listing.corrupt[0].rfind("c: ", 0), 0U);
  auto c = store->read("c");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kCorrupt);
  EXPECT_TRUE(fs::exists(dir_ + "/namespaces/c.json"));  // left for a human to look at
}

TEST_F(StateStoreTest, RecordNamingAnotherNamespaceIsCorrupt) {
  auto store = StateStore::open(dir_);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->write(record("x")));
  fs::rename(dir_ + "/namespaces/x.json", dir_ + "/namespaces/y.json");
  auto y = store->read("y");
  ASSERT_FALSE(y);
  EXPECT_EQ(y.error().code(), ErrorCode::kCorrupt);
}

TEST_F(StateStoreTest, LockExcludesOtherProcesses) {
  auto store = StateStore::open(dir_);
  ASSERT_TRUE(store);
  auto held = store->lock();
  ASSERT_TRUE(held);
  pid_t child = ::fork();
  if (child == 0) {
    // The child must not get the lock while the parent holds it.
    int fd = ::open((dir_ + "/lock").c_str(), O_RDWR | O_CLOEXEC);
    ::_exit(::flock(fd, LOCK_EX | LOCK_NB) == 0 ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(TempFileTest, NamesSayWhoWroteThem) {
  auto writer = temp_file_writer("private.json.tmp-123-456-7");
  ASSERT_TRUE(writer);
  EXPECT_EQ(writer->pid, 123);
  EXPECT_EQ(writer->start_time, 456U);
  writer = temp_file_writer("next.new-12-34-0");
  ASSERT_TRUE(writer);
  EXPECT_EQ(writer->pid, 12);
  EXPECT_EQ(writer->start_time, 34U);
  writer = temp_file_writer("next.new-12-3");  // an earlier netcell's: pid and count
  ASSERT_TRUE(writer);
  EXPECT_EQ(writer->pid, 12);
  EXPECT_FALSE(writer->start_time);
  writer = temp_file_writer("web.json.tmp");  // an earlier netcell's: no writer named
  ASSERT_TRUE(writer);
  EXPECT_EQ(writer->pid, 0);
  // Records, claims, logs and names that only look alike are no temporary files.
  for (const char* name : {"web.json", "a.tmp-1-2-3.json", "x.new-1-2.json", "3", "next", "any",
                           "tcp-8080", "web.0.log", "x.tmp-1-2", "x.tmp-1-2-3-4", "x.tmp-a-2-3",
                           "x.new-0-2-3", ".tmp-1-2-3", "x.tmp", "x.tmp-1-2-3-", "x.new--1-2"}) {
    EXPECT_FALSE(temp_file_writer(name)) << name;
  }
}

// A writer's own temporary files, named by the functions that write them.
TEST_F(StateStoreTest, WritesMakeTheirTemporaryFileUnderTheirOwnName) {
  auto store = StateStore::open(dir_);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->write(record("a")));
  ASSERT_TRUE(replace_claim(dir_ + "/next", "7"));
  auto next = read_claim(dir_ + "/next");
  ASSERT_TRUE(next) << next.error().to_string();
  EXPECT_EQ(*next, "7");
  EXPECT_TRUE(store->sweep_temp_files().empty());
  auto back = store->read("a");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(*back);
}

class SweepTest : public StateStoreTest {
 protected:
  // A file (or, for `claim`, a symbolic link) at RUN_DIR/`path`.
  std::string put(const std::string& path, bool claim = false) {
    std::string full = dir_ + "/" + path;
    fs::create_directories(fs::path(full).parent_path());
    if (claim) {
      fs::create_symlink("web", full);
    } else {
      std::ofstream(full) << "{}";
    }
    return full;
  }
  static std::string id(pid_t pid, std::uint64_t start) {
    return std::to_string(pid) + '-' + std::to_string(start);
  }
};

TEST_F(SweepTest, RemovesWhatWritersThatAreGoneLeftAndKeepsWhatLiveOnesUse) {
  auto store = StateStore::open(dir_);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->write(record("web")));
  // A live writer: a child that waits (at most a minute, should the test stop early); and one
  // that has exited (its pid is free again).
  pid_t live = ::fork();
  if (live == 0) {
    ::alarm(60);
    ::pause();
    ::_exit(0);
  }
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  auto live_start = process_start_time(live);
  ASSERT_TRUE(live_start);
  const std::uint64_t start = *live_start;

  std::vector<std::string> kept = {
      put("namespaces/web.json.tmp-" + id(live, start) + "-0"),
      put("ipam/private/next.new-" + id(live, start) + "-1", true),
      put("topologies/t.json.tmp-" + id(live, start) + "-2"),
      put("ipam/private/next.new-" + std::to_string(live) + "-3", true),  // earlier, pid alive
      put("topologies/t.json.tmp"),  // earlier, nameless, where writers need not hold the lock
      put("ipam/private/3", true),
      dir_ + "/namespaces/web.json",
  };
  fs::create_directories(dir_ + "/topologies/x.tmp-" + id(dead, start) + "-4");  // a directory
  std::vector<std::string> removed = {
      put("networks/private.json.tmp-" + id(dead, start) + "-0"),
      put("namespaces/web.json.tmp-" + id(live, start + 1) + "-0"),  // the pid of another process
      put("ipam/private/next.new-" + id(dead, start) + "-1", true),
      put("topologies/t.json.tmp-" + id(dead, start) + "-2"),
      put("ipam/private/next.new-" + std::to_string(dead) + "-3", true),  // earlier, pid gone
      put("namespaces/old.json.tmp"),  // earlier, nameless, where every writer holds the lock
      put("networks/lan.json.tmp"),
  };

  auto held = store->lock();
  ASSERT_TRUE(held);
  auto swept = store->sweep_temp_files();
  std::sort(swept.begin(), swept.end());
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(swept, removed);
  for (const auto& path : removed) EXPECT_FALSE(fs::is_symlink(path) || fs::exists(path)) << path;
  for (const auto& path : kept) EXPECT_TRUE(fs::is_symlink(path) || fs::exists(path)) << path;
  EXPECT_TRUE(fs::is_directory(dir_ + "/topologies/x.tmp-" + id(dead, start) + "-4"));
  auto back = store->read("web");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(*back);

  // Once the live writer is gone too, its files go; the rest stays.
  ::kill(live, SIGKILL);
  ASSERT_EQ(::waitpid(live, nullptr, 0), live);
  swept = store->sweep_temp_files();
  std::sort(swept.begin(), swept.end());
  std::vector<std::string> now_gone(kept.begin(), kept.begin() + 4);
  std::sort(now_gone.begin(), now_gone.end());
  EXPECT_EQ(swept, now_gone);
  EXPECT_TRUE(store->sweep_temp_files().empty());
}

// A CLI killed inside a write (between the temporary file and its rename: NETCELL_FAULT_AT,
// src/core/fault.h) leaves its temporary file, and gc removes it; on the simulation backend, so
// this runs without privileges (tests/integration/crash_test.cc does the same on Linux).
TEST_F(StateStoreTest, GcRemovesTheTemporaryFileOfAWriteKilledInside) {
  const std::string run = dir_ + "/run";
  auto temp_files = [&] {
    return testing::sh("find " + run + " -name '*.tmp-*' -o -name '*.new-*'").out;
  };
  int kills = 0, inside_writes = 0;
  for (int step = 1; step < 30; ++step) {
    auto r = testing::sh("NETCELL_FAULT_AT=" + std::to_string(step) + " " + NETCELL_CLI_PATH +
                         " --backend simulation --run-dir " + run +
                         " create web --mode private --publish 8080:80 >/dev/null 2>&1");
    if (r.exit_code == 0) break;
    ASSERT_EQ(r.exit_code, 128 + SIGKILL) << "step " << step;
    ++kills;
    const std::string left = temp_files();
    auto gc = testing::cli({"--backend", "simulation", "--run-dir", run, "gc", "--json"});
    ASSERT_EQ(gc.exit_code, 0) << gc.err;
    EXPECT_EQ(temp_files(), "") << "step " << step;
    if (left.empty()) continue;
    ++inside_writes;
    auto removed = nlohmann::json::parse(gc.out)["removed"].dump();
    EXPECT_NE(removed.find(" (temporary file of an interrupted write)"), std::string::npos)
        << "step " << step << ": " << removed;
  }
  EXPECT_GE(kills, 4);
  EXPECT_GE(inside_writes, 2);  // the record written as "creating", the address hint, ...
  ASSERT_EQ(testing::cli({"--backend", "simulation", "--run-dir", run, "destroy", "web"}).exit_code,
            0);
}

}  // namespace
}  // namespace netcell
