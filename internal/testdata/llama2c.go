package testdata

// Llama2cStoriesGreedy is what llama2.c's run.c prints for the shared
// models/stories260K.bin with models/tok512.bin at temperature 0 for 200
// steps: the expected_stdout of llama2.c's test_all.py (an external
// reference, not an output of this project).
const Llama2cStoriesGreedy = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I want to play with your ball, but I can't find it.\"\nLily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\nLily didn't want to help her mom, so she"
