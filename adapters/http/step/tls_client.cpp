#include "http/step/tls_client.h"

#include <boost/asio/ssl/error.hpp>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace usher::http_step {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

namespace {

// What an OpenSSL error says, without asio's " (SSL routines)" suffix.
std::string reason_text(const error_code& ec) {
  std::string m = ec.message();
  if (const size_t paren = m.find(" ("); paren != std::string::npos) m.erase(paren);
  return m;
}

Status file_problem(const char* field, const std::string& path, const std::string& what, const error_code& ec) {
  return Status::invalid_argument("tls." + std::string(field) + " \"" + path + "\": " + what +
                                  (ec ? ": " + reason_text(ec) : ""));
}

// Alerts a server sends when it will not accept the client's certificate
// (or the lack of one).
bool is_client_certificate_alert(int reason) {
  switch (reason) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_tls_context(const ServiceTls& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  error_code ec;
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (tls.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status::invalid_argument("cannot load the system's CA certificates: " + reason_text(ec));
  } else {
    ctx->load_verify_file(tls.ca_file, ec);
    if (ec) return file_problem("ca_file", tls.ca_file, "cannot be read as PEM CA certificates", ec);
  }
  if (!tls.cert_file.empty()) {
    ctx->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) return file_problem("cert_file", tls.cert_file, "cannot be read as a PEM certificate", ec);
    ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec);
    const bool mismatch = ec && ec.category() == boost::asio::error::get_ssl_category() &&
                          ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
    if (mismatch || (!ec && SSL_CTX_check_private_key(ctx->native_handle()) != 1)) {
      ERR_clear_error();
      return file_problem("key_file", tls.key_file, "is not the key of tls.cert_file \"" + tls.cert_file + "\"", {});
    }
    if (ec) return file_problem("key_file", tls.key_file, "cannot be read as a PEM private key", ec);
  }
  return ctx;
}

std::string tls_key(const ServiceTls& tls) {
  // NUL cannot be part of a path: the three fields cannot run into each other.
  return tls.ca_file + '\0' + tls.cert_file + '\0' + tls.key_file;
}

std::string prepare_connection(SSL* ssl, const std::string& host, bool host_is_ip) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (host_is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) return "cannot check certificates for " + host;
    return "";
  }
  if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) return "cannot send \"" + host + "\" as the TLS server name";
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(ssl, host.c_str()) != 1) return "cannot check certificates for \"" + host + "\"";
  return "";
}

std::optional<std::string> tls_refusal(SSL* ssl, const error_code& ec) {
  if (ec.category() != boost::asio::error::get_ssl_category()) return std::nullopt;
  if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK)
    return "certificate verify failed (" + std::string(X509_verify_cert_error_string(verify)) + ")";
  if (is_client_certificate_alert(ERR_GET_REASON(static_cast<unsigned long>(ec.value()))))
    return "the service refused the client certificate: " + reason_text(ec);
  return std::nullopt;
}

bool has_unread_bytes(SSL* ssl) {
  if (SSL_has_pending(ssl) == 1) return true;
  BIO* in = SSL_get_rbio(ssl);
  return in != nullptr && BIO_ctrl_pending(in) > 0;
}

}  // namespace usher::http_step
