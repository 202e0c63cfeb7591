"""The English words the spoken corpus makes its sentences from.

How the list was chosen (by hand, once; it never changes, so corpora stay reproducible):

* digits and numbers: ``zero`` to ``twenty``, the tens, ``hundred``, ``thousand``;
* the keywords of Google's Speech Commands (``yes no up down left right on off stop go``,
  ``backward forward follow learn visual``, ``bed bird cat dog house tree wow happy``);
* commands a voice assistant hears (``open``, ``play``, ``turn``, ``next``, ``cancel`` ...);
* frequent English function words, and everyday nouns, verbs, adjectives, colours and
  times of day, taken from the top of general-service word lists;
* a few contractions (``don't``, ``it's``), so the apostrophe is a token that is heard.

Rules: only ``a``-``z`` and ``'`` (the character vocabulary); no proper names; no homographs
whose pronunciation depends on the sentence (``read``, ``close``, ``live``, ``wind``,
``lead``, ``tear``, ``minute``, ``record``, ``use``), since sentences are random word sequences and
eSpeak would have to guess. ``tests/test_spoken.py`` checks that eSpeak NG speaks every word
as a word of its own (one set of phoneme events each).

Shapes: none; ``LEXICON`` is a sorted tuple of unique strings.
"""

__all__ = ["LEXICON", "DIGITS"]

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

_NUMBERS = """
ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty
thirty forty fifty sixty seventy eighty ninety hundred thousand first second third half
"""

_SPEECH_COMMANDS = """
yes no up down left right on off stop go backward forward follow learn visual
bed bird cat dog house tree wow happy
"""

_COMMANDS = """
open shut start play pause next back turn move walk run jump sit stand wait come look listen
call find show take give put bring push pull lift drop write send repeat cancel save delete
help check clear start finish begin end switch set lock unlock raise lower slow fast louder
quieter skip answer ask tell say stay leave keep hold
"""

_FUNCTION_WORDS = """
the a an and or but not to of in at by with from for this that these those it he she we they
you i me my your our his her their is are was were be been have has had do does did will
would can could should may might must here there what when where which who why how all some
any many few every each other same more most less very too just only also then than now
again
"""

_CONTRACTIONS = """
don't can't it's i'm let's won't isn't that's we're you're
"""

_EVERYDAY = """
north south east west top bottom front behind inside outside near far above below under
over between around red green blue yellow black white orange purple pink brown gray
door window light lamp table chair box ball book cup key phone radio music car bus train
boat plane road river bridge water fire stone wall room kitchen garden street city town
school home work money food bread milk coffee tea apple egg fish meat rice sugar salt
hand head eye ear mouth face foot arm heart voice name word number letter page story
question idea problem place world country sun moon star sky rain snow cloud
man woman child boy girl people friend mother father family baby doctor teacher
good bad big small hot cold new old high low long short early late young warm cool dark
bright quiet loud easy hard soft clean dirty full empty true wrong ready sure free
today tomorrow yesterday morning evening night day week month year time hour
always never often sometimes soon later already still
love like want need know think see hear feel make get try buy pay eat drink sleep
speak talk sing draw drive fly swim smile laugh cry build break fix cut carry
"""

LEXICON = tuple(sorted({
    word
    for block in (" ".join(DIGITS), _NUMBERS, _SPEECH_COMMANDS, _COMMANDS, _FUNCTION_WORDS, _CONTRACTIONS, _EVERYDAY)
    for word in block.split()
}))
