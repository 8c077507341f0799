#include "view/list_page.h"

#include <string>

namespace usher {

size_t json_text_size(const Json& value, size_t cap) {
  switch (value.type()) {
    case Json::value_t::string:
      return value.get_ref<const std::string&>().size() + 2;
    case Json::value_t::array: {
      if (value.empty()) return 2;
      size_t n = 0;
      for (const Json& item : value) {  // each after its "[" or ","
        if (n > cap) break;
        n += 1 + json_text_size(item, cap - n);
      }
      return n + 1;  // "]"
    }
    case Json::value_t::object: {
      if (value.empty()) return 2;
      size_t n = 0;
      for (const auto& [key, item] : value.items()) {  // each "key":value after its "{" or ","
        if (n > cap) break;
        n += 1 + key.size() + 3 + json_text_size(item, cap - n);
      }
      return n + 1;  // "}"
    }
    case Json::value_t::number_float:
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return value.dump().size();
    case Json::value_t::boolean:
      return value.get<bool>() ? 4 : 5;
    default:
      return 4;  // null (a discarded or binary value is never stored)
  }
}

namespace {
constexpr size_t kUncapped = static_cast<size_t>(-1) / 2;
}  // namespace

ListItemSize summarise_list_item(Json& saga) {
  Json omitted = Json::array();
  size_t left_out = 0;  // bytes of the values replaced by null
  auto summarise = [&](Json& value, std::string pointer) {
    const size_t n = json_text_size(value, kUncapped);
    if (n <= kListedValueBytes) return;
    value = nullptr;
    left_out += n - 4;
    omitted.push_back(std::move(pointer));
  };
  if (auto input = saga.find("input"); input != saga.end()) summarise(*input, "/input");
  if (auto steps = saga.find("steps"); steps != saga.end() && steps->is_array()) {
    for (size_t i = 0; i < steps->size(); ++i) {
      Json& step = (*steps)[i];
      if (auto output = step.find("output"); output != step.end())
        summarise(*output, "/steps/" + std::to_string(i) + "/output");
    }
  }
  if (!omitted.empty()) saga["omitted"] = std::move(omitted);
  const size_t listed = json_text_size(saga, kUncapped);
  return {listed + left_out, listed};
}

}  // namespace usher
