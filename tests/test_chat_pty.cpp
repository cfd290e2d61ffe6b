// `ridgeline chat` in a pseudo-terminal, as a person uses it: Ctrl-C stops a reply being streamed and
// the conversation goes on, Ctrl-C at the prompt drops the typed line, Ctrl-D exits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "test_util.h"

namespace {

using Clock = std::chrono::steady_clock;

// A child process on the master side of a pty, with everything it printed (stdout and stderr both
// go to the terminal) collected in `seen`.
class PtyProcess {
 public:
  explicit PtyProcess(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = forkpty(&master_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~PtyProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) close(master_);
  }
  bool started() const { return pid_ > 0; }

  void send(const std::string& s) { ASSERT_EQ(write(master_, s.data(), s.size()), ssize_t(s.size())); }

  // Reads until `text` appears after offset `from` of `seen`; false after `timeout_s`. Returns the
  // offset just past the match in `*end`.
  bool wait_for(const std::string& text, size_t from = 0, double timeout_s = 60, size_t* end = nullptr) {
    auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      if (size_t at = seen.find(text, from); at != std::string::npos) {
        if (end) *end = at + text.size();
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0 || !read_some(int(left))) return false;
    }
  }

  // Waits for the process to end; its exit code, or -1 on timeout or a signal.
  int wait_exit(double timeout_s = 30) {
    auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      read_some(50);  // keep draining, so the child never blocks on a full terminal
    }
    return -1;
  }

  std::string seen;

 private:
  bool read_some(int timeout_ms) {
    pollfd p{master_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return true;  // nothing yet: let the caller check its deadline
    char buf[4096];
    ssize_t n = read(master_, buf, sizeof buf);
    if (n <= 0) return false;  // the child closed the terminal
    seen.append(buf, size_t(n));
    return true;
  }

  int master_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
};

}  // namespace

TEST(ChatPty, CtrlCStopsTheReplyAndTheConversationGoesOn) {
  // Each streamed token waits 150 ms, so the 13-token reply takes about two seconds: long enough to
  // be interrupted after its first word.
  PtyProcess chat({RIDGELINE_CLI, "chat", "--model", ridgeline::test::data_path("tiny-internlm2-chat"),
                   "--device", "cpu", "--token-delay-ms", "150"});
  ASSERT_TRUE(chat.started());
  size_t pos = 0;
  ASSERT_TRUE(chat.wait_for(">>> ", 0, 60, &pos)) << chat.seen;
  EXPECT_THAT(chat.seen, ::testing::HasSubstr("ridgeline chat:"));  // a terminal gets the banner

  chat.send("What is the capital of Japan?\n");
  ASSERT_TRUE(chat.wait_for("The capital", pos, 60, &pos)) << chat.seen;
  chat.send("\x03");
  ASSERT_TRUE(chat.wait_for("[interrupted]", pos, 30, &pos)) << chat.seen;
  EXPECT_EQ(chat.seen.find("Tokyo"), std::string::npos) << "the reply ran to its end: " << chat.seen;
  ASSERT_TRUE(chat.wait_for(">>> ", pos, 30, &pos)) << chat.seen;

  // Ctrl-C at the prompt drops what was typed and prompts again; the next line is a fresh message.
  chat.send("What is 99 + 99?");
  chat.send("\x03");
  ASSERT_TRUE(chat.wait_for(">>> ", pos, 30, &pos)) << chat.seen;
  chat.send("What is 40 + 20?\n");
  ASSERT_TRUE(chat.wait_for("= 60.", pos, 60, &pos)) << chat.seen;
  EXPECT_EQ(chat.seen.find("198", pos), std::string::npos);
  ASSERT_TRUE(chat.wait_for(">>> ", pos, 30, &pos)) << chat.seen;

  chat.send("\x04");  // Ctrl-D at an empty prompt
  EXPECT_EQ(chat.wait_exit(), 0) << chat.seen;
}
