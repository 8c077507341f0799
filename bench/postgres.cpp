#include "postgres.h"

#include <libpq-fe.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

namespace usher::bench {
namespace {

using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Conn connect(const std::string& uri) { return Conn(PQconnectdb(uri.c_str()), &PQfinish); }

}  // namespace

bool reset_postgres(const std::string& uri, std::string& error) {
  Conn c = connect(uri);
  if (PQstatus(c.get()) != CONNECTION_OK) {
    error = PQerrorMessage(c.get());
    return false;
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> r(
      PQexec(c.get(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public; CHECKPOINT"), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    error = PQresultErrorMessage(r.get());
    return false;
  }
  return true;
}

std::optional<double> wal_syncs(const std::string& uri) {
  Conn c = connect(uri);
  if (PQstatus(c.get()) != CONNECTION_OK) return std::nullopt;
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), "SELECT wal_sync FROM pg_stat_wal"), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) return std::nullopt;
  return std::stod(PQgetvalue(r.get(), 0, 0));
}

std::optional<int> postmaster_pid(const std::string& uri) {
  Conn c = connect(uri);
  if (PQstatus(c.get()) != CONNECTION_OK) return std::nullopt;
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), "SELECT pg_backend_pid()"), &PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) return std::nullopt;
  std::ifstream in("/proc/" + std::string(PQgetvalue(r.get(), 0, 0)) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // "pid (comm) state ppid ...": the command may hold spaces, so read after its ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 1));
  std::string state;
  int ppid = 0;
  if (!(fields >> state >> ppid) || ppid <= 1) return std::nullopt;
  return ppid;
}

}  // namespace usher::bench
