"""GroupLens files written in each release's exact layout, from invented rows (no real MovieLens
data is ever used: it may not be redistributed)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from movielens_env.data.formats import ML_100K_GENRES

# (raw user, raw item, rating, timestamp), in file order. Ids are neither contiguous nor sorted.
WHOLE_STAR_ROWS = [
    (7, 100, 4.0, 881250949),
    (3, 5, 1.0, 891717742),
    (42, 33, 5.0, 878887116),
    (7, 5, 3.0, 880606923),
    (3, 100, 2.0, 886397596),
    (42, 10, 4.0, 884182806),
    (7, 33, 5.0, 881171488),
]
HALF_STAR_ROWS = [
    (7, 100, 4.5, 1260759144),
    (3, 5, 0.5, 1112486027),
    (42, 33, 5.0, 964982703),
    (7, 5, 3.5, 1260759179),
    (3, 100, 2.0, 1112484676),
    (42, 10, 1.5, 1445714994),
    (7, 33, 3.0, 1260759182),
]
# Raw item id -> (title, genres). Item 77 has metadata but no rating.
MOVIES = {
    5: ("Café (1995)", ("Comedy", "Drama")),
    10: ("Heat (1995)", ("Action", "Crime", "Thriller")),
    33: ("American President, The (1995)", ("Comedy", "Drama", "Romance")),
    77: ("Unrated Film (1999)", ("Horror",)),
    100: ("Toy Story (1995)", ("Animation", "Children's", "Comedy")),
}


def _fmt_rating(value: float, whole: bool) -> str:
    return str(int(value)) if whole else f"{value:g}"


def write_file(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` (its folders made) in ``encoding``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def write_ml100k(folder: Path, rows=WHOLE_STAR_ROWS, movies=MOVIES) -> None:
    """``u.data`` (user item rating timestamp, tab separated) and latin-1 ``u.item``."""
    write_file(folder / "u.data", "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in rows))
    if movies is None:
        return
    lines = []
    for item, (title, genres) in movies.items():
        flags = "|".join("1" if g in genres else "0" for g in ML_100K_GENRES)
        url = f"http://us.imdb.com/M/title-exact?{item}"
        lines.append(f"{item}|{title}|01-Jan-1995||{url}|{flags}\n")
    write_file(folder / "u.item", "".join(lines), "latin-1")


def write_dat(folder: Path, rows, movies=MOVIES, whole: bool = True, encoding="latin-1") -> None:
    """``ratings.dat`` and ``movies.dat``, ``::`` separated, genres ``|``-joined."""
    text = "".join(f"{u}::{i}::{_fmt_rating(r, whole)}::{t}\n" for u, i, r, t in rows)
    write_file(folder / "ratings.dat", text)
    if movies is None:
        return
    lines = [f"{item}::{title}::{'|'.join(genres)}\n" for item, (title, genres) in movies.items()]
    write_file(folder / "movies.dat", "".join(lines), encoding)


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv(folder: Path, rows=HALF_STAR_ROWS, movies=MOVIES) -> None:
    """``ratings.csv`` and ``movies.csv`` with headers, titles quoted where needed."""
    text = "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{i},{r:g},{t}\n" for u, i, r, t in rows
    )
    write_file(folder / "ratings.csv", text)
    if movies is None:
        return
    lines = [
        f"{item},{_csv_field(title)},{'|'.join(genres)}\n"
        for item, (title, genres) in movies.items()
    ]
    write_file(folder / "movies.csv", "movieId,title,genres\n" + "".join(lines))


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Zip ``folder`` the way GroupLens does: everything under its top folder."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{folder.name}/", "")
        for file in sorted(folder.iterdir()):
            archive.write(file, f"{folder.name}/{file.name}")
    return zip_path
