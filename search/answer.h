/*
** Final answers of math solutions: finding the answer in a solution text and
** deciding whether two answers are the same. Internal to copse; the search
** strategies use it for majority and weighted voting, the tests for grading.
**
** Two answers are equal exactly when their normalized keys are equal and
** non-empty, so a key can stand for its answer in a vote: answers that
** answer_equal calls equal always share one key, and answers with different
** keys are never equal. The key is not meant to be read; it is LaTeX with
** the noise taken out and every number written one way:
**   - $, \left, \right, \!, \, and other spacing, \displaystyle, spaces,
**     \% and %, \$, degree marks (^\circ, ^{\circ}, the ° sign), and the
**     wrappers \boxed, \text, \mbox, \mathrm, \textbf (their text stays);
**   - \dfrac and \tfrac are \frac, \sqrt2 is \sqrt{2}, x^2 is x^{2};
**   - numbers are exact rationals in lowest terms: 0.5, .50, 1/2, \frac12,
**     \dfrac{1}{2} and \frac{2}{4} all become \frac{1}{2}; 5.0, +5 and 5
**     become 5; 1\frac{4}{5} is the mixed number 9/5; thousands separators
**     go (1,000, 1,\!000, 1{,}000 and 1\,000 are 1000; but "1, 000" with a
**     space is a list of two numbers). Numbers too long for 64 bits keep
**     their digits, without leading or trailing zeros;
**   - a trailing word or two after a number is a unit and goes ("5 dollars",
**     "5.4 \text{ cents}", "864 \mbox{ inches}^2"), so does a sentence's
**     final period, and "x = " or "x \in " before the answer;
**   - tuples, intervals, lists and matrices compare element by element in
**     order, their brackets kept: (1,2) is not [1,2) nor 1,2;
**   - a lone letter, with or without parentheses ("(c)", "\text{(C)}"), is a
**     multiple-choice option and upper case; an answer of letters only
**     ("\text{Evelyn}") is lower case.
*/
#ifndef COPSE_ANSWER_H
#define COPSE_ANSWER_H

#include <stddef.h>

/*
** Copy the final answer of a solution text (len bytes) to out (at most cap
** bytes, NUL-terminated when cap > 0) and return its length, which may be
** cap or more when out was too small (as with snprintf); -1 when the text
** has no answer (or text is NULL), -2 when out of memory.
**
** The answer is the content of the last complete \boxed{...} or \fbox{...}
** (nested braces balanced; "\boxed 5" takes what follows up to a space or
** $). Without one, it is the rest of the line after whichever comes last
** of "####", "answer is" and "answer:" (any case, not inside a word; one
** with nothing after it on its line does not count), trimmed of spaces,
** markdown stars, a colon, a final period and $...$ around it. The text is
** returned as written; compare answers with answer_equal.
*/
int answer_extract(const char *text, size_t len, char *out, size_t cap);

/*
** Write the normalized key of the answer s (len bytes) to out (at most cap
** bytes, NUL-terminated when cap > 0) and return the key's length, which
** may be cap or more when out was too small; -1 when out of memory. An
** empty key means there is no answer.
*/
int answer_normalize(const char *s, size_t len, char *out, size_t cap);

/* 1 when the NUL-terminated answers a and b have the same non-empty key,
** else 0 (also when out of memory). */
int answer_equal(const char *a, const char *b);

#endif
