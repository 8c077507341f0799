#include "store/list_filter.h"

#include <algorithm>

namespace usher {

std::string smallest_saga_id_at(int64_t ms) {
  constexpr int64_t kMaxMs = (int64_t{1} << 48) - 1;
  const auto t = static_cast<uint64_t>(std::clamp<int64_t>(ms, 0, kMaxMs));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "00000000-0000-0000-0000-000000000000";
  // 12 hex digits of milliseconds: the first 8, a dash, then 4.
  for (int i = 0; i < 12; ++i) {
    const char digit = kHex[(t >> (44 - 4 * i)) & 0xf];
    out[static_cast<size_t>(i < 8 ? i : i + 1)] = digit;
  }
  return out;
}

std::string sqlite_list_sql(unsigned shape, const std::string& columns) {
  std::string sql = "SELECT " + columns + " FROM sagas WHERE 1";
  if (shape & kListStatus) sql += " AND status = ?1";
  if (shape & kListWorkflow) sql += " AND workflow = ?2";
  if (shape & kListAfter) sql += " AND id < ?3";
  if (shape & kListKey) sql += " AND idempotency_key = ?5";
  if (shape & kListCorrelation) sql += " AND correlation_id = ?6";
  if (shape & kListCreatedAfter) sql += " AND id >= ?7 AND created_at >= ?8";
  if (shape & kListCreatedBefore) sql += " AND created_at < ?9";
  return sql + " ORDER BY id DESC LIMIT ?4";
}

}  // namespace usher
