#include "summary.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <vector>

namespace booking_history {

namespace {

// Runs `sql` and calls `row` for each row.
void query(sqlite3* db, const char* sql, const std::function<void(sqlite3_stmt*)>& row) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
}

std::string text(sqlite3_stmt* s, int col, const char* if_null) {
  const unsigned char* t = sqlite3_column_text(s, col);
  return t ? reinterpret_cast<const char*>(t) : if_null;
}

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// The p95 by nearest rank: the smallest time that at least 95 % of the
// confirmed bookings took at most. SQLite has no percentile function, so it
// is taken here from the sorted rows of the confirm_times view.
double p95(std::vector<int64_t> ms) {
  std::sort(ms.begin(), ms.end());
  const size_t rank = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(ms.size())));
  return static_cast<double>(ms[std::max<size_t>(rank, 1) - 1]);
}

}  // namespace

std::string summarize(sqlite3* db) {
  std::string out;
  std::map<std::string, int64_t> by_status;
  int64_t total = 0;
  query(db, "SELECT status, count(*) FROM bookings GROUP BY status", [&](sqlite3_stmt* s) {
    by_status[text(s, 0, "")] = sqlite3_column_int64(s, 1);
    total += sqlite3_column_int64(s, 1);
  });
  out += "bookings: " + std::to_string(total) + " (" + std::to_string(by_status["completed"]) + " completed, " +
         std::to_string(by_status["compensated"]) + " compensated, " + std::to_string(by_status["stuck"]) + " stuck";
  for (const char* other : {"running", "compensating", "terminated"})
    if (by_status[other]) out += ", " + std::to_string(by_status[other]) + " " + other;
  out += ")\n";

  std::string days;
  query(db, "SELECT concert_id, day, bookings FROM bookings_per_concert_day ORDER BY concert_id, day",
        [&](sqlite3_stmt* s) {
          days += std::string(days.empty() ? "" : ", ") + text(s, 0, "(no concert)") + " " + text(s, 1, "(no date)") +
                  ": " + std::to_string(sqlite3_column_int64(s, 2));
        });
  out += "per concert and day: " + (days.empty() ? std::string("none") : days) + "\n";

  std::string rate = "n/a (no booking has ended)";
  query(db, "SELECT percent FROM compensation_rate", [&](sqlite3_stmt* s) {
    if (sqlite3_column_type(s, 0) != SQLITE_NULL) rate = format("%.1f %%", sqlite3_column_double(s, 0));
  });
  std::string reasons;
  query(db, "SELECT reason, bookings FROM compensation_reasons ORDER BY bookings DESC, reason",
        [&](sqlite3_stmt* s) {
          reasons += std::string(reasons.empty() ? "" : "; ") + text(s, 0, "(no reason)") + " (" +
                     std::to_string(sqlite3_column_int64(s, 1)) + ")";
        });
  out += "compensation rate: " + rate + (reasons.empty() ? "" : " — " + reasons) + "\n";

  std::vector<int64_t> times;
  query(db, "SELECT confirm_ms FROM confirm_times", [&](sqlite3_stmt* s) { times.push_back(sqlite3_column_int64(s, 0)); });
  double average = 0;
  query(db, "SELECT average_ms FROM confirm_time_average", [&](sqlite3_stmt* s) { average = sqlite3_column_double(s, 0); });
  if (times.empty()) {
    out += "time to confirm: n/a (0 confirmed)\n";
  } else {
    out += "time to confirm: average " + format("%.2f", average / 1000) + " s, p95 " +
           format("%.2f", p95(times) / 1000) + " s (" + std::to_string(times.size()) + " confirmed)\n";
  }
  return out;
}

}  // namespace booking_history
