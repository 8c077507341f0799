#include "postgres.h"

#include <libpq-fe.h>

#include <memory>

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

}  // namespace usher::bench
