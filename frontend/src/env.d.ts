// esbuild bundles CSS imports into main.css; tsc only needs to know they exist.
declare module '*.css';
