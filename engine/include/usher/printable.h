// Text from sagas made safe to print on an operator's terminal or in a text
// log (docs/operations.md): a saga's input, outputs, ids, notes and errors
// come from clients and services, and a raw ESC, CSI or OSC sequence in one
// of them would act on the terminal that shows it (clear the screen, retitle
// the window, hide what follows).
#pragma once

#include <string>
#include <string_view>

namespace usher {

// `text` with every control character written out as a JSON-style escape:
// C0 (U+0000–U+001F, ESC and newlines included) and DEL as "\u001b", C1
// (U+0080–U+009F, CSI included) as "\u009b"; bytes that are not UTF-8 become
// U+FFFD. Everything else is kept as it is, so ordinary text in any script
// reads unchanged. The escapes are also valid inside a JSON string, so JSON
// text (one line, or each line of indented JSON) stays JSON.
std::string printable(std::string_view text);

}  // namespace usher
