#include "core/state_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

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

}  // namespace
}  // namespace netcell
