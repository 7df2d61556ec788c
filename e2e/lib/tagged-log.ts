/** A logger whose lines stand indented under mocha's test titles, tagged with the harness or suite they come from. */
export const taggedLog =
  (tag: string) =>
  (line: string): void => {
    console.log(`      [${tag}] ${line}`);
  };
