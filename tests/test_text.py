from pipelines.text import clean_for_speech, split_ready


def test_sentences_come_off_as_soon_as_complete():
    ready, rest = split_ready("It is a red square. It sits on a grey")
    assert ready == ["It is a red square."]
    assert rest == "It sits on a grey"


def test_nothing_ready_until_a_boundary():
    assert split_ready("It is a red") == ([], "It is a red")


def test_short_sentences_merge_and_abbreviations_do_not_split():
    ready, rest = split_ready("Yes. It is red. More")
    assert ready == ["Yes. It is red."]
    ready, _ = split_ready("It says e.g. the price is high. Then")
    assert ready == ["It says e.g. the price is high."]


def test_clause_boundary_only_when_asked():
    text = "On the table in front of you, there is a red square. "
    assert split_ready(text)[0] == ["On the table in front of you, there is a red square."]
    ready, rest = split_ready(text, clause_words=4)
    assert ready[0] == "On the table in front of you,"


def test_question_and_exclamation_marks_and_quotes():
    ready, _ = split_ready('Is it "red?" Yes! It is red. ')
    assert ready == ['Is it "red?"', "Yes! It is red."]


def test_clean_for_speech_drops_markup():
    assert clean_for_speech("**Red** square\n- item `x`") == "Red square - item x"


def test_clean_for_speech_drops_broken_bytes_but_keeps_other_languages():
    assert clean_for_speech("sofa\ufffd\ufffd( two\x00 mug") == "sofa ( two mug"
    assert clean_for_speech("Ça coûte 3 €, señor") == "Ça coûte 3 €, señor"


def test_first_piece_ends_at_the_first_boundary_or_after_a_few_words_whichever_comes_first():
    from pipelines.text import first_piece

    assert first_piece("On the table, a mug ", 10) == (["On the table,"], "a mug ")
    long = "It looks like a red mug on a table near the window, and "
    assert first_piece(long, 10) == (["It looks like a red mug on a table near"], "the window, and ")
    assert first_piece("Yes, it is a red mug. It ", 10) == (["Yes, it is a red mug."], "It ")  # "Yes," is too short
    assert first_piece("It is a red", 10) == ([], "It is a red")  # still streaming
    assert first_piece("It looks like a red mug, ", 0) == ([], "It looks like a red mug, ")  # 0: sentences only
