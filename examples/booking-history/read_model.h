// The read model's SQLite database: the `bookings` table, the analytics views
// over it, and the feed position. Every batch of events is applied in one
// transaction together with the position it reaches, so a crash leaves the
// database at the end of a batch, never inside one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "booking.h"

struct sqlite3;

namespace booking_history {

// What one batch did, event by event.
struct ApplyCounts {
  uint64_t applied = 0;          // changed a booking
  uint64_t repeats = 0;          // (saga_id, seq) already applied: dropped
  uint64_t other_workflows = 0;  // not a concert-booking saga: dropped
  uint64_t malformed = 0;        // not an event: dropped with a warning
  ApplyCounts& operator+=(const ApplyCounts& o);
};

class ReadModel {
 public:
  // Opens (creating when needed) the database at `path`; throws
  // std::runtime_error when it cannot.
  explicit ReadModel(const std::string& path);
  ~ReadModel();
  ReadModel(const ReadModel&) = delete;
  ReadModel& operator=(const ReadModel&) = delete;

  // Drops every table and view of the read model and creates them empty:
  // the start of a rebuild from the beginning of the feed.
  void reset();

  // Applies `events` (feed event JSON, in feed order) in one transaction; when
  // `position` is given it is stored as the position of `source` in the same
  // transaction. Warnings about skipped or odd events go to stderr. Throws
  // std::runtime_error when SQLite fails (nothing of the batch is kept then).
  ApplyCounts apply(const std::vector<nlohmann::json>& events, const std::string& source = {},
                    const std::optional<std::string>& position = std::nullopt);

  // The stored position of `source` ("http"), or empty: from the start.
  std::string position(const std::string& source);

  sqlite3* db() { return db_; }

 private:
  void create_schema();
  std::optional<Booking> load(const std::string& saga_id);
  void save(const Booking& b);
  void exec(const char* sql);

  sqlite3* db_ = nullptr;
};

}  // namespace booking_history
