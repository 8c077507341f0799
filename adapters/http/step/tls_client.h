// TLS to https:// step services: the client context for one service's `tls:`
// settings, what each new connection is told before its handshake (SNI and
// the name its certificate must carry), and what a failed handshake means.
//
// Verification is OpenSSL's own, on every connection: the chain up to a
// trusted CA (the service's ca_file, else the system's store), the validity
// dates, and the host name or IP address of the URL (SSL_set1_host /
// X509_VERIFY_PARAM_set1_ip_asc, so a mismatch is a verify result like the
// others). TLS 1.2 is the oldest version offered.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <openssl/ssl.h>

#include "usher/definition.h"
#include "usher/status.h"

namespace usher::http_step {

// A client context that verifies the peer against tls.ca_file (or the
// system's CAs) and presents tls.cert_file/key_file when set. The files are
// read now: kInvalidArgument names the file and what is wrong with it
// (`tls.ca_file "/etc/x.pem": no certificate in it`, `tls.key_file "…" does not
// match tls.cert_file`).
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const ServiceTls& tls);

// A key that is the same for the same settings: one context (and one pool per
// host:port) per distinct `tls:` block.
std::string tls_key(const ServiceTls& tls);

// Sets SNI (not for an IP literal: RFC 6066) and the name the certificate
// must match on a connection before its handshake. "" on success, else why.
std::string prepare_connection(SSL* ssl, const std::string& host, bool host_is_ip);

// Why a handshake that failed with `ec` was a refusal no retry can fix — the
// service's certificate did not verify ("certificate verify failed (certificate
// has expired)"), or the service refused ours ("the service refused the client
// certificate: …") — or nullopt for a failure that may pass on its own (a reset,
// a timeout, a protocol error).
std::optional<std::string> tls_refusal(SSL* ssl, const boost::system::error_code& ec);

// True when TLS bytes have arrived that no read has consumed yet (in the
// SSL object or the memory BIO under it): on an idle connection or after a
// complete reply they belong to no request of ours.
bool has_unread_bytes(SSL* ssl);

}  // namespace usher::http_step
