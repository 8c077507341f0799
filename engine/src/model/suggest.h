// "Did you mean …?" for misspelled field, step, service and type names.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace usher {

// Optimal string alignment distance (Levenshtein plus adjacent transposition,
// so "atempts"/"attempts" and "paymnets"/"payments" are both close).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a likely typo:
// within a third of the word's length (at least 1, at most 3 edits), or a
// case-insensitive match. Ties go to the earliest candidate.
std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean \"x\"?)" or "" — ready to append to a message.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace usher
