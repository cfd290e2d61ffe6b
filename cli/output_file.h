// Output files that are either written whole or not at all. An OutputFile opens a temporary file
// beside its target when it is made (so that an unwritable --out fails before any measuring), takes
// the content, and renames the temporary over the target on publish(); destroyed unpublished, it
// removes the temporary. A killed process leaves at most a hidden ".NAME.tmp-PID-N" beside the
// target, never a truncated file under the target's name. Every write, flush and close is checked.
//
// A target that exists and is not a regular file (/dev/null, /dev/full, a pipe) is written in place:
// it cannot be replaced by a rename, and must not be.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ridgeline::cli {

class OutputFile {
 public:
  // Throws "PATH: cannot write there: REASON" when the folder is missing or not writable, or PATH
  // is a folder.
  explicit OutputFile(std::string path);
  ~OutputFile();
  OutputFile(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  OutputFile& operator=(OutputFile&&) = delete;

  // Writes `content` (gzip-compressed where PATH ends in ".gz") and closes the file; throws "PATH:
  // write failed: REASON" (disk full, file too large, ...). Call once.
  void write(std::string_view content);
  // Moves the written file to its name.
  void publish();
  const std::string& path() const { return path_; }
  // True when the target is replaced by a rename (a regular file, or none yet); false when it is
  // written in place (a device or a pipe), where writing it again would append, not replace.
  bool replaces_target() const { return !temp_.empty(); }

 private:
  std::string path_, temp_;  // temp_ empty when writing in place
  int fd_ = -1;
  bool written_ = false;
};

// Several files that appear together or not at all (a Markdown report and its charts): every file
// is written before the first is published, so a file that cannot be written leaves none behind.
void write_files(const std::vector<std::pair<std::string, std::string>>& path_and_content);

// One file, written and published.
void write_file(const std::string& path, std::string_view content);

}  // namespace ridgeline::cli
