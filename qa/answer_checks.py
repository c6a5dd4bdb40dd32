"""Model-free checks of a short answer against its question: the answer type, the subject, a restatement.

The classic answer-type check of extractive QA: "how many", "when", «كم», «متى» need a number or a
time word, "how old" a number of years, "how long" a counted duration (`fits_question`; the question's
typing, `asks_number_or_time`, also demotes undated sentences in qa.retrieve's citation rank). A span
that only names what the question asks about (`names_only_the_subject`) and a rendering that only
restates the question (`repeats_question`) are not answers. Yes/no questions (`asks_yes_no`) have
no span to copy. All are regular expressions and word sets over qa.text's normalised tokens: they
share none of the reader model's failures.

Leaves out: whether a rendering says what the span says (qa.verify.check_rendering) and whether
its names are supported (qa.translate.unsupported_names).
"""

from __future__ import annotations

import re

from qa import text as qtext

# On the dev sample, 7 of 10 English renderings refused were refused as "repeating the question"
# while only sharing a word with it; a restatement covers most of the question's content words.
REPEAT_SHARE = 0.6

_ASKS_NUMBER = re.compile(
    r"\bhow (?:many|much|old|long|far|often)\b|\bwhat (?:year|percentage|number)\b|\bكم\b|في أي (?:عام|سنة)",
    re.I,
)
# "when" asks only as the question's word: first ("When did…"), before an inverted auxiliary ("…, when
# was he born?") or after since/until; a "when" clause ("What sea bordered his empire when he died?",
# "What is it called when…") asks no time (on the dev set, 6 of its 13 English questions with "when").
_ASKS_TIME = re.compile(
    r"^\W*when\b|\bwhen (?:did|does|do|was|were|is|are|will|would|has|have|had|can|could|should)\b"
    r"|\b(?:since|until|till) when\b|\bwhat time\b|\bمتى\b|في أي (?:يوم|شهر|وقت)",
    re.I,
)
# An age is a number of years, never "after hours of talks": only a number or a year word answers it.
_ASKS_AGE = re.compile(r"\bhow old\b|\bwhat age\b|كم عمر|كم يبلغ عمر|ما عمر", re.I)
# A duration is counted ("three years", «منذ عامين»), never named: a weekday or a month answers
# "when", not "how long" ("How long has he been the Kremlin spokesman?" got «يوم الجمعة», Friday).
_ASKS_DURATION = re.compile(r"\bhow long\b|منذ متى|كم من الوقت|كم مدة|ما مدة|ما هي مدة", re.I)
_NAMED_TIMES = {
    qtext.normalize(w)
    for w in """
    monday tuesday wednesday thursday friday saturday sunday january february march april may june july
    august september october november december today yesterday tomorrow
    الاثنين الثلاثاء الأربعاء الخميس الجمعة السبت الأحد يناير فبراير مارس أبريل مايو يونيو يوليو أغسطس
    سبتمبر أكتوبر نوفمبر ديسمبر كانون شباط آذار نيسان أيار حزيران تموز آب أيلول تشرين أمس غدا اليوم
    """.split()
}
_AGE_WORDS = {qtext.normalize(w) for w in "year years old عام عاما سنة سنوات عمر العمر".split()}
_NUMBER_WORDS = set(
    qtext.normalize(w)
    for w in """
    one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred
    thousand million billion dozen half
    واحد واحدة اثنان اثنين اثنتان اثنتين ثلاث ثلاثة أربع أربعة خمس خمسة ست ستة سبع سبعة ثمان ثماني
    ثمانية تسع تسعة عشر عشرة عشرين عشرون ثلاثين ثلاثون أربعين خمسين مئة مائة مئات ألف آلاف ألفي
    مليون ملايين مليار نصف ربع ثلث عشرات
    """.split()
)
_TIME_WORDS = set(
    qtext.normalize(w)
    for w in """
    year years month months week weeks day days hour hours minute minutes morning evening night
    today yesterday tomorrow monday tuesday wednesday thursday friday saturday sunday january february
    march april may june july august september october november december century decade ago
    عام العام سنة السنة شهر الشهر أسبوع الأسبوع يوم اليوم ساعة ساعات دقيقة دقائق صباح مساء ليلة أمس غدا
    الاثنين الثلاثاء الأربعاء الخميس الجمعة السبت الأحد يناير فبراير مارس أبريل مايو يونيو يوليو أغسطس
    سبتمبر أكتوبر نوفمبر ديسمبر كانون شباط آذار نيسان أيار حزيران تموز آب أيلول تشرين القرن خلال منذ قبل بعد
    سنوات أعوام أشهر شهور أيام أسابيع عقود قرون twenties thirties forties fifties sixties seventies
    eighties nineties
    """.split()
)
# A decade named in words («في أوائل التسعينيات», "the early nineties"): a "when" answer on the dev set.
_DECADE = re.compile(r"^(?:و|ب|ل|ف)?(?:ال)?(?:عشر|ثلاث|اربع|خمس|ست|سبع|ثمان|تسع)ينيات$")


def asks_number_or_time(question: str) -> bool:
    """True when the question asks for a number, a time or a duration ("how many", "when", «كم»,
    «متى», «في أي عام»): the questions `fits_question` types.

    Example: asks_number_or_time("متى تولى صدام حسين رئاسة العراق؟") is True
    """
    return bool(_ASKS_NUMBER.search(question) or _ASKS_TIME.search(question))


def fits_question(question: str, words: str) -> bool:
    """False when the question asks for a number, a time or a duration and `words` contain none.

    Example: fits_question("How old is Sergei Lavrov?", "وزير الخارجية الروسي") is False
    """
    if not asks_number_or_time(question):
        return True
    folded = qtext.normalize(words)
    if re.search(r"\d", folded):
        return True
    tokens = set(re.findall(r"\w+", folded))
    stems = {re.sub(r"^(?:و|ب|ل|ف)?(?:ال)?", "", t) for t in tokens}
    if _ASKS_AGE.search(qtext.normalize(question)):
        return bool((tokens | stems) & _NUMBER_WORDS) and bool((tokens | stems) & _AGE_WORDS)
    if _ASKS_DURATION.search(question) and (tokens | stems) & _NAMED_TIMES:
        return bool((tokens | stems) & _NUMBER_WORDS)
    # Durations answer number questions too ("how far in advance" / «قبل كم من الوقت»: «قبل يوم كامل»).
    # A time word without its article («العام» -> «عام»); never a number word: «ألفي» (two thousand)
    # normalises to «الفي», which without "ال" is «في» ("in"), and every span with «في» fitted.
    vocab = _NUMBER_WORDS | _TIME_WORDS | {re.sub(r"^ال", "", w) for w in _TIME_WORDS}
    return bool((tokens | stems) & vocab) or any(_DECADE.match(t) for t in tokens)


def _stems(text: str) -> set[str]:
    """Content-word stems: qtext.tokens (Arabic light stemming) plus English -s/-es/-e/-ed/-ing stripped."""
    return {
        re.sub(r"(?:ing|ed|es|e|s)$", "", t) if len(t) > 4 and t.isascii() else t for t in qtext.tokens(text)
    }


_YES_NO = re.compile(
    r"^\s*(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should)\b|^\s*هل\b",
    re.I,
)


def asks_yes_no(question: str) -> bool:
    """True for a yes/no question ("Did…?", "Has…?", «هل…؟»).

    Example: asks_yes_no("هل تغير موقف روسيا؟") is True; asks_yes_no("Who is he?") is False
    """
    return bool(_YES_NO.search(question))


def names_only_the_subject(words: str, question: str) -> bool:
    """True when the span says nothing the question does not already say («كايل أورتون» for
    «من هو كايل أورتون؟»): the reader copied the question's subject instead of its answer.

    Example: names_only_the_subject("كايل أورتون", "من هو كايل أورتون؟") is True
    """
    return repeats_question(words, question)


def repeats_question(rendering: str, question: str) -> bool:
    """True when the rendering restates the question: all its content words are the question's,
    and they make up most (`REPEAT_SHARE`) of the question's. An answer that shares a word or two
    with a longer question ("EU law" for "Which body of law …") is not a repetition.

    Example: repeats_question("Lavrov negotiated in Moscow", "Who did Lavrov negotiate with in Moscow?") is True
    """
    words, asked = _stems(rendering), _stems(question)
    return bool(words) and words <= asked and len(words) >= REPEAT_SHARE * len(asked)
