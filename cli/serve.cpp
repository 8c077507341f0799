// `usher serve`: loads every workflow, opens the log, binds the HTTP step
// adapter, recovers unfinished sagas and serves the trigger API until SIGTERM
// or SIGINT.
//
// Exit codes (commands.h): 0 stopped cleanly on a signal; 1 a workflow is
// invalid; 2 a flag, the config file or the token file is wrong; 3 the
// database cannot be opened or the address cannot be bound.
//
// Threads: the main thread sets everything up and then waits in sigwait()
// for SIGTERM/SIGINT, which are blocked in every thread (the mask is set
// before any thread starts), so no signal handler runs at an awkward moment.
// The engine has its engine and log-writer threads, the step adapter and the
// API server their I/O threads, the API handler its worker pool; logging goes
// through spdlog's async logger (one thread, a bounded queue that drops the
// oldest lines rather than block the engine thread).
//
// Shutdown order matters. First the engine drains: no saga starts and no
// attempt is sent any more (one decided now stays scheduled in the log and is
// sent on the next start), a ?wait is answered 202 with its saga as it
// stands, and the calls already out have shutdown_grace to answer, so their
// results are logged. Then the server stops (no new requests; those in
// progress get up to 2 s), then the handler's pool, then the engine (adapters
// stop, pending commits are flushed). Answers the engine still owes a
// connection after that are dropped by the stopped server (api_server.cpp).
#include <signal.h>
#include <unistd.h>

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "http/api/api_handler.h"
#include "http/api/api_metrics.h"
#include "http/api/api_server.h"
#include "http/api/log_line.h"
#include "http/step/http_step_adapter.h"
#include "kafka/kafka_feed_sink.h"
#include "kafka/kafka_step_adapter.h"
#include "serve_config.h"
#include "usher/definition.h"
#include "usher/engine.h"
#include "usher/saga_log.h"

namespace usher::cli {
namespace {

struct ServeFlags {
  std::string config, db, workflows, listen, token_file, read_token_file, durability, log_level,
      log_format;
  unsigned io_threads = 0;
  std::string shutdown_grace;
  bool no_migrate = false;
};

void setup_logging(const std::string& level, api::LogFormat format) {
  spdlog::init_thread_pool(8192, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  // JSON lines are for a collector: no color codes inside them.
  if (format == api::LogFormat::kJson) sink->set_color_mode(spdlog::color_mode::never);
  auto logger = std::make_shared<spdlog::async_logger>("usher", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::overrun_oldest);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::err);
  logger->set_formatter(api::make_log_formatter(format));  // log_line.h: text or JSON lines
  spdlog::set_default_logger(logger);
}

int serve(const ServeFlags& flags) {
  // 1. Configuration: defaults, then the file, then flags.
  ServeConfig config;
  if (!flags.config.empty()) {
    auto loaded = load_serve_config(flags.config, config);
    if (!loaded.is_ok()) {
      std::cerr << "usher serve: " << loaded.status().message() << "\n";
      return 2;
    }
    config = loaded.value();
  }
  if (!flags.db.empty()) config.db = flags.db;
  if (!flags.workflows.empty()) config.workflows = flags.workflows;
  if (!flags.listen.empty()) config.listen = flags.listen;
  if (!flags.token_file.empty()) config.token_file = flags.token_file;
  if (!flags.read_token_file.empty()) config.read_token_file = flags.read_token_file;
  if (!flags.log_level.empty()) config.log_level = flags.log_level;
  if (!flags.log_format.empty()) config.log_format = flags.log_format;
  auto log_format = api::parse_log_format(config.log_format);
  if (!log_format.is_ok()) {
    std::cerr << "usher serve: --log-format: " << log_format.status().message() << "\n";
    return 2;
  }
  if (flags.io_threads) config.io_threads = flags.io_threads;
  if (!flags.shutdown_grace.empty()) {
    auto grace = parse_shutdown_grace(flags.shutdown_grace);
    if (!grace.is_ok()) {
      std::cerr << "usher serve: --shutdown-grace: " << grace.status().message() << "\n";
      return 2;
    }
    config.shutdown_grace = grace.value();
  }
  if (!flags.durability.empty()) {
    auto d = parse_durability(flags.durability);
    if (!d.is_ok()) {
      std::cerr << "usher serve: --durability: " << d.status().message() << "\n";
      return 2;
    }
    config.durability = d.value();
  }
  if (Status s = check_log_level(config.log_level); !s.is_ok()) {
    std::cerr << "usher serve: --log-level: " << s.message() << "\n";
    return 2;
  }
  auto listen = parse_listen(config.listen);
  if (!listen.is_ok()) {
    std::cerr << "usher serve: --listen: " << listen.status().message() << "\n";
    return 2;
  }
  std::string token;
  if (!config.token_file.empty()) {
    auto t = read_token_file(config.token_file);
    if (!t.is_ok()) {
      std::cerr << "usher serve: " << t.status().message() << "\n";
      return 2;
    }
    token = std::move(t.value());
  }
  std::string read_token;
  if (!config.read_token_file.empty()) {
    if (token.empty()) {
      std::cerr << "usher serve: a read-only token (read_token_file) needs the API token (token_file) too: "
                   "without one every route is open anyway\n";
      return 2;
    }
    auto t = read_token_file(config.read_token_file);
    if (!t.is_ok()) {
      std::cerr << "usher serve: " << t.status().message() << "\n";
      return 2;
    }
    if (t.value() == token) {
      std::cerr << "usher serve: the read-only token must differ from the API token\n";
      return 2;
    }
    read_token = std::move(t.value());
  }

  // 2. Workflows: every file must load, or nothing starts.
  std::error_code fs_ec;
  if (!std::filesystem::is_directory(config.workflows, fs_ec)) {
    std::cerr << "usher serve: workflows directory \"" << config.workflows
              << "\" does not exist (use --workflows DIR)\n";
    return 1;
  }
  DirectoryLoad dir = load_definition_dir(config.workflows);
  if (!dir.diagnostics.empty()) {
    for (const auto& d : dir.diagnostics) std::cerr << d.to_string() << "\n";
    std::cerr << "usher serve: not starting: " << dir.diagnostics.size() << " problem"
              << (dir.diagnostics.size() == 1 ? "" : "s") << " in " << config.workflows << "\n";
    return 1;
  }
  for (const auto& def : dir.definitions) {
    for (const auto& [name, service] : def->services) {
      if (service.transport != Transport::kHttp) continue;
      if (Status s = HttpStepAdapter::check_service(service); !s.is_ok()) {
        // The message names the service already: `service "pay": tls.ca_file …`.
        std::cerr << def->file << ":" << service.pos.line << ":" << service.pos.col << ": " << s.message() << "\n";
        return 1;
      }
    }
  }

  setup_logging(config.log_level, log_format.value());
  if (dir.definitions.empty()) spdlog::warn("no workflow files in {}: nothing can be started", config.workflows);

  // 3. Signals are blocked from here on in every thread; main waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // 4. The engine.
  api::ApiMetrics metrics;
  EngineOptions options;
  options.db_path = config.db;
  options.durability = config.durability;
  options.migrate_schema = !flags.no_migrate;
  const std::string log_shown = describe_saga_log(config.db);  // a URI without its password
  options.on_transition = [&metrics](const TransitionInfo& t) {
    metrics.observe(t);
    api::log_transition(t);
  };
  auto opened = Engine::open(options);
  if (!opened.is_ok()) {
    std::cerr << "usher serve: cannot open " << log_shown << ": " << opened.status().message() << "\n";
    spdlog::shutdown();
    return 3;
  }
  std::unique_ptr<Engine> engine = std::move(opened.value());
  for (const auto& def : dir.definitions) {
    if (Status s = engine->load(def); !s.is_ok()) {
      std::cerr << def->file << ": " << s.message() << "\n";
      engine->shutdown();
      spdlog::shutdown();
      return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDataLoss ? 3 : 1;
    }
    spdlog::info("loaded {} v{} ({} steps) from {}", def->name, def->version, def->steps.size(), def->file);
  }
  HttpStepAdapterOptions http_options;
  http_options.max_connections_per_endpoint = config.max_connections_per_service;
  engine->bind_transport(Transport::kHttp, std::make_shared<HttpStepAdapter>(http_options));
  // Kafka: no connection is made until a step goes to a cluster.
  KafkaStepAdapterOptions kafka_options;
  kafka_options.properties = config.kafka_properties;
  kafka_options.group_id = config.kafka_group_id;
  auto kafka = KafkaStepAdapter::create(kafka_options);
  if (!kafka.is_ok()) {
    std::cerr << "usher serve: kafka: " << kafka.status().message() << "\n";
    engine->shutdown();
    spdlog::shutdown();
    return 2;
  }
  engine->bind_transport(Transport::kKafka, kafka.value());
  if (Status s = engine->resume(); !s.is_ok()) {
    std::cerr << "usher serve: cannot recover sagas from " << log_shown << ": " << s.message() << "\n";
    engine->shutdown();
    spdlog::shutdown();
    return 3;
  }
  // The event feed to Kafka, when configured: a thread of its own that a
  // broker outage stalls without touching the sagas.
  if (!config.publish_kafka_brokers.empty()) {
    auto sink = KafkaFeedSink::create({.brokers = config.publish_kafka_brokers,
                                       .topic = config.publish_kafka_topic,
                                       .properties = config.kafka_properties});
    Status published = sink.is_ok() ? engine->publish_feed(sink.value()) : sink.status();
    if (!published.is_ok()) {
      std::cerr << "usher serve: publish.kafka: " << published.message() << "\n";
      engine->shutdown();
      spdlog::shutdown();
      return 2;
    }
    spdlog::info("publishing the event feed to kafka topic {} at {}", config.publish_kafka_topic,
                 config.publish_kafka_brokers);
  }

  // 5. The API.
  api::ApiHandlerOptions handler_options;
  handler_options.token = token;
  handler_options.read_token = read_token;
  auto handler = std::make_unique<api::ApiHandler>(*engine, &metrics, handler_options);
  api::ApiServerOptions server_options;
  server_options.address = listen->host;
  server_options.port = listen->port;
  server_options.io_threads = config.io_threads;
  server_options.max_body_bytes = config.max_body_bytes;
  server_options.max_header_bytes = config.max_header_bytes;
  server_options.max_connections = config.max_connections;
  server_options.max_connections_per_address = config.max_connections_per_address;
  server_options.first_request_timeout = config.first_request_timeout;
  server_options.idle_timeout = config.idle_timeout;
  server_options.read_timeout = config.read_timeout;
  auto started = api::ApiServer::start(*handler, server_options);
  if (!started.is_ok()) {
    std::cerr << "usher serve: " << started.status().message() << "\n";
    handler->shutdown();
    engine->shutdown();
    spdlog::shutdown();
    return 3;
  }
  std::unique_ptr<api::ApiServer> server = std::move(started.value());
  auto ep = server->local_endpoint();
  std::string shown = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
  spdlog::info("serving {} workflows from {}, log {}, {} auth", dir.definitions.size(), config.workflows, log_shown,
               token.empty() ? "without" : read_token.empty() ? "with bearer" : "with bearer and read-only bearer");
  // Shown in GET /v1/cluster; a wildcard address names this machine instead.
  char host[256] = {};
  const bool wildcard = ep.address().is_unspecified() && ::gethostname(host, sizeof host - 1) == 0 && host[0];
  engine->advertise("http://" + (wildcard ? std::string(host) : shown) + ":" + std::to_string(ep.port()));
  std::cout << "usher: listening on " << shown << ":" << ep.port() << std::endl;  // endl: tests read this line

  // 6. Wait for a signal, then stop in order.
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("received {}: stopping; calls in flight have {} ms to answer", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               config.shutdown_grace.count());
  // No new saga or attempt from here; a ?wait is answered 202 with its saga.
  handler->drain();
  if (!engine->drain(config.shutdown_grace))
    spdlog::warn("calls still in flight after the shutdown grace: they are sent again, with the same idempotency "
                 "keys, when usher next starts");
  server->stop(Millis{2'000});
  handler->shutdown();
  engine->shutdown();  // pending commits are flushed and the log is closed here
  spdlog::info("stopped");
  spdlog::shutdown();
  engine.reset();
  handler.reset();
  server.reset();
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("serve", "Run the engine and the HTTP trigger API");
  auto flags = std::make_shared<ServeFlags>();
  cmd->add_option("--config", flags->config, "YAML config file (flags override it)")->type_name("FILE");
  cmd->add_option("--db", flags->db, "saga log: a SQLite file or a postgresql:// URI [usher.db]")
      ->type_name("FILE|URI");
  cmd->add_flag("--no-migrate", flags->no_migrate,
                "PostgreSQL: refuse a schema that is not current instead of creating or upgrading it");
  cmd->add_option("--workflows", flags->workflows, "directory of workflow YAML files [workflows]")->type_name("DIR");
  cmd->add_option("--listen", flags->listen, "address to serve the API on [127.0.0.1:8080]; port 0 picks one")
      ->type_name("HOST:PORT");
  cmd->add_option("--token-file", flags->token_file, "file holding the bearer token the API requires (mode 600)")
      ->type_name("FILE");
  cmd->add_option("--read-token-file", flags->read_token_file,
                  "file holding a read-only token: GET routes and /metrics, no action (mode 600)")
      ->type_name("FILE");
  cmd->add_option("--durability", flags->durability, "full (survives power loss) or normal [full]")
      ->type_name("full|normal");
  cmd->add_option("--log-level", flags->log_level, "trace|debug|info|warn|error|critical|off [info]")
      ->type_name("LEVEL");
  cmd->add_option("--log-format", flags->log_format, "text, or json: one JSON object per line [text]")
      ->type_name("text|json");
  cmd->add_option("--io-threads", flags->io_threads, "threads serving the API [1]")->type_name("N");
  cmd->add_option("--shutdown-grace", flags->shutdown_grace,
                  "on SIGTERM, how long calls in flight may take to answer before usher exits [5s]")
      ->type_name("DURATION");
  cmd->callback([flags, &exit_code] { exit_code = serve(*flags); });
}

}  // namespace usher::cli
