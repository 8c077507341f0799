#include "store/postgres/pg.h"

#include <cstdio>
#include <ctime>
#include <limits>

#include "usher/service_text.h"

namespace usher::pg {

bool is_uri(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

std::string describe(const std::string& uri) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return "postgresql://(unparsable URI)";
  }
  std::string user, host, port, dbname;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    std::string_view key = o->keyword;
    if (key == "user") user = o->val;
    if (key == "host") host = o->val;
    if (key == "port") port = o->val;
    if (key == "dbname") dbname = o->val;
  }
  PQconninfoFree(options);
  std::string out = "postgresql://";
  if (!user.empty()) out += user + "@";
  out += host;
  if (!port.empty()) out += ":" + port;
  out += "/" + dbname;
  return out;
}

Status check(const PGresult* result, PGconn* conn, const std::string& what) {
  const ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_PIPELINE_SYNC) {
    return Status::ok();
  }
  std::string message = result ? PQresultErrorMessage(result) : "";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  const std::string text = what + ": " + (message.empty() ? describe_error(conn) : valid_utf8(message));
  if (status == PGRES_PIPELINE_ABORTED) return Status::aborted(what + ": an earlier statement of the pipeline failed");
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view sqlstate = state ? state : "";
  if (sqlstate == "UA001") return Status::aborted(text);
  if (sqlstate == "UA003" || sqlstate == "UA004") return Status::not_owner(text);
  if (sqlstate == "UA002" || sqlstate == "23505") return Status::already_exists(text);
  if (sqlstate.starts_with("22") || sqlstate.starts_with("23")) return Status::invalid_argument(text);
  if (sqlstate.starts_with("42")) return Status::internal(text);
  return Status::unavailable(text);
}

std::string describe_error(PGconn* conn) {
  std::string message = conn ? PQerrorMessage(conn) : "no connection";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return valid_utf8(message);
}

std::string error_detail(const PGresult* result) {
  const char* detail = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL) : nullptr;
  return detail ? detail : "";
}

Result<Connection> Connection::open(const std::string& uri, const char* application_name) {
  // Keywords before "dbname" are defaults the URI (expanded in its place) overrides.
  const char* keywords[] = {"connect_timeout", "tcp_user_timeout", "fallback_application_name", "dbname", nullptr};
  const char* values[] = {"5", "10000", application_name, uri.c_str(), nullptr};
  Connection c;
  c.conn_.reset(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (!c.conn_) return Status::unavailable("connect to " + describe(uri) + ": out of memory");
  if (PQstatus(c.conn_.get()) != CONNECTION_OK) {
    return Status::unavailable("connect to " + describe(uri) + ": " + describe_error(c.conn_.get()));
  }
  return c;
}

Result<ResultPtr> Connection::exec(const std::string& sql, const std::string& what) {
  ResultPtr r(PQexec(conn_.get(), sql.c_str()));
  if (Status s = check(r.get(), conn_.get(), what); !s) return s;
  return r;
}

Result<ResultPtr> Connection::exec_prepared(const char* name, const std::vector<std::optional<std::string>>& params,
                                            const std::string& what) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  ResultPtr r(PQexecPrepared(conn_.get(), name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
  if (Status s = check(r.get(), conn_.get(), what); !s) return s;
  return r;
}

Status Connection::prepare(const char* name, const std::string& sql, const std::string& what,
                           const std::vector<Oid>& types) {
  ResultPtr r(PQprepare(conn_.get(), name, sql.c_str(), static_cast<int>(types.size()),
                        types.empty() ? nullptr : types.data()));
  return check(r.get(), conn_.get(), what);
}

void ArrayLiteral::separate() {
  if (!empty_) text_ += ',';
  empty_ = false;
}

void ArrayLiteral::add(std::string_view text) {
  separate();
  const std::string clean = storable(text);
  text_ += '"';
  for (char c : clean) {
    if (c == '"' || c == '\\') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
}

void ArrayLiteral::add(int64_t n) {
  separate();
  text_ += std::to_string(n);
}

void ArrayLiteral::add_time(int64_t us) {
  separate();
  text_ += '"';
  text_ += time_text(us);
  text_ += '"';
}

void ArrayLiteral::add_null() {
  separate();
  text_ += "NULL";
}

std::string ArrayLiteral::take() {
  text_ += '}';
  return std::move(text_);
}

std::string time_text(int64_t us) {
  // Floor division, so times before 1970 keep a positive fraction.
  int64_t seconds = us / 1'000'000;
  int64_t micros = us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --seconds;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(micros));
  return out;
}

std::string storable(std::string_view text) {
  if (text.find('\0') == std::string_view::npos && is_valid_utf8(text)) return std::string(text);
  return valid_utf8(text, std::numeric_limits<size_t>::max());
}

std::string storable_json(std::string json) {
  // Walk the escapes so that "\\u0000" (a backslash, then "u0000") is left alone.
  for (size_t i = 0; i + 1 < json.size(); ++i) {
    if (json[i] != '\\') continue;
    if (json.compare(i + 1, 5, "u0000") == 0) json.replace(i + 2, 4, "fffd");
    ++i;  // skip the escaped character
  }
  return json;
}

bool is_saga_id(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace usher::pg
