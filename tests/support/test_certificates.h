// Certificates for the TLS tests, made with the `openssl` CLI into a
// directory of their own: a CA, and from it a good server certificate (for
// 127.0.0.1 and localhost), one for another name, one that expired in 2020,
// and a client certificate; plus a second CA and a server certificate it
// signed, which the first CA does not know. EC P-256 keys: quick to make.
// The expired certificate comes from `openssl ca` with explicit dates, so no
// clock has to be faked.
#pragma once

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "support/temp_dir.h"

namespace usher::test {

struct CertAndKey {
  std::string cert;
  std::string key;
};

class TestCertificates {
 public:
  TestCertificates() {
    write("ext-server.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    write("ext-wrong.cnf", "subjectAltName=DNS:wrong.example\n");
    write("ext-client.cnf", "extendedKeyUsage=clientAuth\n");
    write("ca.cnf",
          "[ca]\ndefault_ca=test_ca\n[test_ca]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n"
          "default_md=sha256\npolicy=anything\nunique_subject=no\n[anything]\ncommonName=supplied\n");
    write("index.txt", "");
    write("serial", "01\n");
    run(ca("ca", "usher test CA") + ca("other-ca", "another CA") +
        signed_by("ca", "server", "localhost", "ext-server.cnf") +
        signed_by("ca", "wrong-name", "wrong.example", "ext-wrong.cnf") +
        signed_by("other-ca", "unknown-ca", "localhost", "ext-server.cnf") +
        signed_by("ca", "client", "usher client", "ext-client.cnf") +
        // Expired: same names as `server`, valid for one day in 2020.
        key_and_request("expired", "localhost") +
        "openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem "
        "-startdate 20200101000000Z -enddate 20200102000000Z -extfile ext-server.cnf -notext && ");
  }

  std::string ca() const { return dir_.file("ca.pem"); }
  std::string other_ca() const { return dir_.file("other-ca.pem"); }
  CertAndKey server() const { return pair("server"); }
  CertAndKey wrong_name() const { return pair("wrong-name"); }
  CertAndKey unknown_ca() const { return pair("unknown-ca"); }
  CertAndKey expired() const { return pair("expired"); }
  CertAndKey client() const { return pair("client"); }
  std::string dir() const { return dir_.path(); }

 private:
  CertAndKey pair(const std::string& name) const { return {dir_.file(name + ".pem"), dir_.file(name + ".key")}; }

  void write(const std::string& name, const std::string& text) const { std::ofstream(dir_.file(name)) << text; }

  static std::string ca(const std::string& name, const std::string& cn) {
    return "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + name +
           ".key -out " + name + ".pem -days 3650 -subj '/CN=" + cn + "' && ";
  }
  static std::string key_and_request(const std::string& name, const std::string& cn) {
    return "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + name + ".key -out " +
           name + ".csr -subj '/CN=" + cn + "' && ";
  }
  static std::string signed_by(const std::string& ca, const std::string& name, const std::string& cn,
                               const std::string& ext) {
    return key_and_request(name, cn) + "openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
           ".key -CAcreateserial -out " + name + ".pem -days 365 -extfile " + ext + " && ";
  }

  // Quiet unless it fails: everything openssl says goes to openssl.log.
  void run(const std::string& commands) const {
    const std::string script = "cd '" + dir_.path() + "' && ( " + commands + "true ) >openssl.log 2>&1";
    if (std::system(script.c_str()) != 0) {
      std::ifstream log(dir_.file("openssl.log"));
      throw std::runtime_error("openssl could not make the test certificates: " +
                               std::string(std::istreambuf_iterator<char>(log), {}));
    }
  }

  TempDir dir_;
};

}  // namespace usher::test
