// `${input.…}` references checked against the workflow's input schema at load
// time (model/input_references.h): a name the schema does not declare is a
// load error with a did-you-mean; where the schema says nothing, nothing is checked.
#include <doctest/doctest.h>

#include "test_util.h"

using usher::test::errors;
using usher::test::kHeader;
using usher::test::load;
using usher::test::Lines;

namespace {

// kHeader (lines 1-5), then an input schema of `schema` (lines from 6) and
// one step "reserve" whose `with` is `with`.
std::string workflow(const std::string& schema, const std::string& with) {
  return std::string(kHeader) + "input:\n" + schema +
         "steps:\n"
         "  - name: reserve\n"
         "    call: seats.hold\n"
         "    with: " + with + "\n";
}

const std::string kEventSchema =
    "  type: object\n"                 // 7
    "  required: [eventId, userId]\n"  // 8
    "  properties:\n"                  // 9
    "    eventId: { type: string }\n"  // 10
    "    seat: { type: string }\n";    // 11

}  // namespace

TEST_CASE("refuses a reference to an input property the schema does not declare, with a suggestion") {
  auto r = load(workflow(kEventSchema, "{ eventId: \"${input.eventID}\", seat: \"${input.seat}\" }"));  // line 15
  CHECK_FALSE(r.ok());
  CHECK(errors(r) == Lines{"x.yaml:15:22: step \"reserve\": ${input.eventID}: the input schema declares no property "
                           "\"eventID\" (did you mean \"eventId\"?)"});

  SUBCASE("a default does not excuse a typo") {
    auto d = load(workflow(kEventSchema, "{ eventId: \"${input.eventID:-none}\" }"));
    CHECK(errors(d) == Lines{"x.yaml:15:22: step \"reserve\": ${input.eventID:-none}: the input schema declares no "
                             "property \"eventID\" (did you mean \"eventId\"?)"});
  }
  SUBCASE("inside a longer string, an array and a nested object") {
    auto d = load(workflow(kEventSchema, "{ a: \"seat ${input.seet} please\", b: [1, { c: \"${input.evntId}\" }] }"));
    CHECK(errors(d) == Lines{
                           "x.yaml:15:16: step \"reserve\": ${input.seet}: the input schema declares no property "
                           "\"seet\" (did you mean \"seat\"?)",
                           "x.yaml:15:57: step \"reserve\": ${input.evntId}: the input schema declares no property "
                           "\"evntId\" (did you mean \"eventId\"?)",
                       });
  }
  SUBCASE("a name far from every declared one gets no suggestion") {
    auto d = load(workflow(kEventSchema, "{ x: \"${input.concertHall}\" }"));
    CHECK(errors(d) ==
          Lines{"x.yaml:15:16: step \"reserve\": ${input.concertHall}: the input schema declares no property "
                "\"concertHall\""});
  }
  SUBCASE("in a compensation and in an http path") {
    auto d = load(std::string(kHeader) + "input:\n" + kEventSchema +
                  "steps:\n"                                           // 12
                  "  - name: reserve\n"                                // 13
                  "    call: seats.hold\n"                             // 14
                  "    http: { path: \"/events/${input.eventid}\" }\n"  // 15
                  "    compensate:\n"                                  // 16
                  "      call: seats.release\n"                        // 17
                  "      with: { seat: \"${input.seats}\" }\n");       // 18
    CHECK(errors(d) == Lines{
                           "x.yaml:15:19: step \"reserve\": ${input.eventid}: the input schema declares no property "
                           "\"eventid\" (did you mean \"eventId\"?)",
                           "x.yaml:18:21: step \"reserve\": ${input.seats}: the input schema declares no property "
                           "\"seats\" (did you mean \"seat\"?)",
                       });
  }
  SUBCASE("additionalProperties: false changes nothing") {
    auto d = load(workflow(kEventSchema + "  additionalProperties: false\n", "{ eventId: \"${input.eventID}\" }"));
    CHECK(errors(d) == Lines{"x.yaml:16:22: step \"reserve\": ${input.eventID}: the input schema declares no property "
                             "\"eventID\" (did you mean \"eventId\"?)"});
  }
}

TEST_CASE("accepts references to declared input properties, required ones included") {
  // userId is declared by `required` alone; the whole input needs no property.
  auto r = load(workflow(kEventSchema, "{ e: \"${input.eventId}\", u: \"${input.userId}\", s: \"${input.seat}\", "
                                       "all: \"${input}\", deeper: \"${input.userId.anything}\" }"));
  CHECK(errors(r) == Lines{});
  CHECK(r.ok());

  SUBCASE("a required name is offered as a suggestion") {
    auto d = load(workflow(kEventSchema, "{ u: \"${input.userID}\" }"));
    CHECK(errors(d) == Lines{"x.yaml:15:16: step \"reserve\": ${input.userID}: the input schema declares no property "
                             "\"userID\" (did you mean \"userId\"?)"});
  }
}

TEST_CASE("follows nested properties, array items and local $refs") {
  const std::string schema =
      "  type: object\n"
      "  definitions:\n"
      "    address: { type: object, properties: { street: { type: string }, city: { type: string } } }\n"
      "  properties:\n"
      "    customer:\n"
      "      type: object\n"
      "      properties:\n"
      "        email: { type: string }\n"
      "        address: { $ref: \"#/definitions/address\" }\n"
      "    seats:\n"
      "      type: array\n"
      "      items: { type: object, properties: { row: { type: string } } }\n"
      "    pair:\n"
      "      type: array\n"
      "      items: [{ properties: { first: {} } }, { properties: { second: {} } }]\n";  // lines 7-21
  const int with_line = 25;
  auto at = [&](int column) { return "x.yaml:" + std::to_string(with_line) + ":" + std::to_string(column) + ": "; };

  auto ok = load(workflow(schema, "{ a: \"${input.customer.email}\", b: \"${input.customer.address.city}\", "
                                  "c: \"${input.seats.0.row}\", d: \"${input.pair.1.second}\", e: \"${input.pair.2.x}\" }"));
  CHECK(errors(ok) == Lines{});

  SUBCASE("one level down") {
    auto r = load(workflow(schema, "{ a: \"${input.customer.emial}\" }"));
    CHECK(errors(r) == Lines{at(16) + "step \"reserve\": ${input.customer.emial}: the input schema declares no "
                                      "property \"emial\" in input.customer (did you mean \"email\"?)"});
  }
  SUBCASE("at the top, above a nested path") {
    auto r = load(workflow(schema, "{ a: \"${input.costumer.email}\" }"));
    CHECK(errors(r) == Lines{at(16) + "step \"reserve\": ${input.costumer.email}: the input schema declares no "
                                      "property \"costumer\" (did you mean \"customer\"?)"});
  }
  SUBCASE("through a $ref") {
    auto r = load(workflow(schema, "{ a: \"${input.customer.address.stret}\" }"));
    CHECK(errors(r) == Lines{at(16) + "step \"reserve\": ${input.customer.address.stret}: the input schema declares "
                                      "no property \"stret\" in input.customer.address (did you mean \"street\"?)"});
  }
  SUBCASE("into array items") {
    auto r = load(workflow(schema, "{ a: \"${input.seats.0.rwo}\", b: \"${input.pair.0.second}\" }"));
    CHECK(errors(r) ==
          Lines{at(16) + "step \"reserve\": ${input.seats.0.rwo}: the input schema declares no property \"rwo\" in "
                         "input.seats.0 (did you mean \"row\"?)",
                at(43) + "step \"reserve\": ${input.pair.0.second}: the input schema declares no property \"second\" "
                         "in input.pair.0"});
  }
}

TEST_CASE("checks nothing where the schema does not say which properties there are") {
  const std::string with = "{ a: \"${input.anything}\", b: \"${input.x.y.z}\" }";
  const char* schemas[] = {
      "  type: object\n",
      "  type: object\n  required: [eventId]\n",
      "  type: object\n  properties: { eventId: {} }\n  additionalProperties: true\n",
      "  type: object\n  properties: { eventId: {} }\n  additionalProperties: { type: string }\n",
      "  type: object\n  properties: { eventId: {} }\n  patternProperties: { \"^x\": {} }\n",
      "  properties: { eventId: {} }\n  anyOf: [{ properties: { anything: {} } }, { required: [x] }]\n",
      "  allOf: [{ properties: { eventId: {} } }]\n",
      "  properties: { eventId: {} }\n  oneOf: [{ required: [eventId] }]\n",
      "  $ref: \"#/definitions/open\"\n  definitions: { open: { type: object } }\n",
      "  items: { properties: { a: {} } }\n",
  };
  for (const char* schema : schemas) {
    CAPTURE(schema);
    auto r = load(workflow(schema, with));
    CHECK(errors(r) == Lines{});
  }
  SUBCASE("a boolean schema, and no schema at all") {
    CHECK(errors(load(std::string(kHeader) + "input: true\nsteps:\n  - name: reserve\n    call: seats.hold\n"
                                             "    with: { a: \"${input.anything}\" }\n")) == Lines{});
    CHECK(errors(load(std::string(kHeader) + "steps:\n  - name: reserve\n    call: seats.hold\n"
                                             "    with: { a: \"${input.anything}\" }\n")) == Lines{});
  }
}

TEST_CASE("a $ref at the root is followed") {
  auto r = load(workflow("  $ref: \"#/definitions/booking\"\n"
                         "  definitions: { booking: { type: object, properties: { eventId: {} } } }\n",
                         "{ a: \"${input.eventID}\" }"));  // line 12
  CHECK(errors(r) == Lines{"x.yaml:12:16: step \"reserve\": ${input.eventID}: the input schema declares no property "
                           "\"eventID\" (did you mean \"eventId\"?)"});
}
